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

    private readonly LineTail _stdout;
    private readonly LineTail _stderr;

    public ReplicaOutput(string folder, bool fromEnd)
    {
        _stdout = new LineTail(Path.Combine(folder, StdoutFile), fromEnd);
        _stderr = new LineTail(Path.Combine(folder, StderrFile), fromEnd);
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

    private sealed class LineTail(string path, bool fromEnd) : IDisposable
    {
        private readonly byte[] _buffer = new byte[16 * 1024];
        private readonly List<byte> _partial = [];
        private FileStream? _stream;

        public void Read(List<(bool IsStdout, string Line)> lines, bool isStdout, bool final)
        {
            if (_stream is null)
            {
                try
                {
                    _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    if (fromEnd)
                    {
                        _stream.Seek(0, SeekOrigin.End);
                    }
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
