using Capstan.Cli;

return await CapstanCli.RunAsync(args, CliContext.ForProcess());
