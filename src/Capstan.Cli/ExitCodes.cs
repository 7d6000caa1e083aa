namespace Capstan.Cli;

/// <summary>The process exit codes of <c>capstan</c>; the non-trivial ones follow BSD sysexits.</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>Bad input, or the thing asked for does not exist or already exists.</summary>
    public const int UserError = 1;

    /// <summary>The command line itself could not be parsed.</summary>
    public const int Usage = 64;

    /// <summary>The server at <c>CAPSTAN_URL</c> could not be reached.</summary>
    public const int Unavailable = 69;

    /// <summary>Something failed that the user cannot fix by changing the command.</summary>
    public const int Internal = 70;

    /// <summary>Stopped by Ctrl-C.</summary>
    public const int Canceled = 130;
}
