using System.Globalization;
using System.Text;

namespace Capstan.Runtime.Local;

/// <summary>
/// One replica's stdout and stderr, which its process writes straight to files in its folder (so it keeps
/// running, and its output is kept, when the control plane restarts); read here as they grow, line by line.
/// </summary>
internal sealed class ReplicaOutput : IDisposable
{
    public const string StdoutFile = "stdout.log";
    public const string StderrFile = "stderr.log";
    public const string ExitCodeFile = "exit-code";
    public const string PositionFile = "copied-up-to";

    private readonly string _folder;
    private readonly LineTail _stdout;
    private readonly LineTail _stderr;

    /// <summary>
    /// From the start of the files; or, with <paramref name="resume"/> (a replica adopted after a restart), from where
    /// the previous runtime instance noted it had copied to (noted after every copy), or from their current end when it left no note.
    /// </summary>
    public ReplicaOutput(string folder, bool resume)
    {
        _folder = folder;
        long? stdoutStart = 0;
        long? stderrStart = 0;
        if (resume)
        {
            var saved = ReadPosition(folder);
            (stdoutStart, stderrStart) = saved is { } position ? (position.Stdout, position.Stderr) : ((long?)null, (long?)null);

            // A note is good for one adoption; a later crash must not send the next instance back to it.
            File.Delete(Path.Combine(folder, PositionFile));
        }

        _stdout = new LineTail(Path.Combine(folder, StdoutFile), stdoutStart);
        _stderr = new LineTail(Path.Combine(folder, StderrFile), stderrStart);
    }

    /// <summary>Notes how far the output has been copied, for the instance that adopts the replica next.</summary>
    public void SavePosition() => File.WriteAllText(
        Path.Combine(_folder, PositionFile),
        string.Create(CultureInfo.InvariantCulture, $"{_stdout.Position} {_stderr.Position}"));

    private static (long Stdout, long Stderr)? ReadPosition(string folder)
    {
        try
        {
            var parts = File.ReadAllText(Path.Combine(folder, PositionFile)).Split(' ');
            return parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var stdout)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var stderr)
                ? (stdout, stderr)
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Creates the empty output files the replica's shell appends to.</summary>
    public static void Prepare(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, StdoutFile), []);
        File.WriteAllBytes(Path.Combine(folder, StderrFile), []);
        File.Delete(Path.Combine(folder, ExitCodeFile));
    }

    /// <summary>The exit code the replica's shell recorded, or null when it was killed or vanished before it could.</summary>
    public static int? ReadExitCode(string folder)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(folder, ExitCodeFile)).Trim();
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var code) ? code : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>New complete lines (and, when <paramref name="final"/>, an unterminated last one); <c>IsStdout</c> tells the stream.</summary>
    public void Read(List<(bool IsStdout, string Line)> lines, bool final)
    {
        _stdout.Read(lines, true, final);
        _stderr.Read(lines, false, final);
    }

    public void Dispose()
    {
        _stdout.Dispose();
        _stderr.Dispose();
    }

    /// <summary>Reads a growing file line by line from <paramref name="start"/> (null: its end when first opened).</summary>
    private sealed class LineTail(string path, long? start) : IDisposable
    {
        private readonly byte[] _buffer = new byte[16 * 1024];
        private readonly List<byte> _partial = [];
        private FileStream? _stream;

        /// <summary>The offset up to which complete lines have been handed out.</summary>
        public long Position => _stream is null ? start ?? 0 : _stream.Position - _partial.Count;

        public void Read(List<(bool IsStdout, string Line)> lines, bool isStdout, bool final)
        {
            if (_stream is null)
            {
                try
                {
                    _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    _stream.Seek(Math.Min(start ?? long.MaxValue, _stream.Length), SeekOrigin.Begin);
                }
                catch (FileNotFoundException)
                {
                    return;
                }
            }

            int read;
            while ((read = _stream.Read(_buffer, 0, _buffer.Length)) > 0)
            {
                var start = 0;
                for (var i = 0; i < read; i++)
                {
                    if (_buffer[i] != (byte)'\n')
                    {
                        continue;
                    }

                    lines.Add((isStdout, Decode(_buffer.AsSpan(start, i - start))));
                    start = i + 1;
                }

                _partial.AddRange(_buffer.AsSpan(start, read - start));
            }

            if (final && _partial.Count > 0)
            {
                lines.Add((isStdout, Decode([])));
            }
        }

        public void Dispose() => _stream?.Dispose();

        private string Decode(ReadOnlySpan<byte> tail)
        {
            string text;
            if (_partial.Count == 0)
            {
                text = Encoding.UTF8.GetString(tail);
            }
            else
            {
                _partial.AddRange(tail);
                text = Encoding.UTF8.GetString([.. _partial]);
                _partial.Clear();
            }

            return text.EndsWith('\r') ? text[..^1] : text;
        }
    }
}
