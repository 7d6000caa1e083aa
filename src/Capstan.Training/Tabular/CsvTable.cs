using System.Text;

namespace Capstan.Training.Tabular;

/// <summary>
/// A CSV file with a header row, read whole into memory as text cells (RFC 4180: commas, double
/// quotes, doubled quotes inside quotes). Rows shorter than the header are padded with empty cells.
/// </summary>
public sealed class CsvTable
{
    private CsvTable(string path, IReadOnlyList<string> header, IReadOnlyList<string[]> rows)
    {
        Path = path;
        Header = header;
        Rows = rows;
    }

    public string Path { get; }

    public IReadOnlyList<string> Header { get; }

    public IReadOnlyList<string[]> Rows { get; }

    public int IndexOf(string column)
    {
        for (var i = 0; i < Header.Count; i++)
        {
            if (string.Equals(Header[i], column, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    public static CsvTable Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new TrainingDataException($"Data file '{path}' does not exist.");
        }

        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var header = ReadRecord(reader);
        if (header is null || header.All(string.IsNullOrWhiteSpace))
        {
            throw new TrainingDataException($"Data file '{path}' is empty: it needs a header row and at least one data row.");
        }

        for (var i = 0; i < header.Length; i++)
        {
            header[i] = header[i].Trim();
            if (header[i].Length == 0)
            {
                throw new TrainingDataException($"Data file '{path}': column {i + 1} of the header has no name.");
            }
        }

        var duplicate = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new TrainingDataException($"Data file '{path}': column '{duplicate.Key}' appears more than once in the header.");
        }

        var rows = new List<string[]>();
        var line = 1;
        while (ReadRecord(reader) is { } record)
        {
            line++;
            if (record.Length == 1 && record[0].Length == 0)
            {
                continue; // blank line
            }

            if (record.Length > header.Length)
            {
                throw new TrainingDataException($"Data file '{path}': record {line} has {record.Length} fields but the header has {header.Length}.");
            }

            if (record.Length < header.Length)
            {
                Array.Resize(ref record, header.Length);
                for (var i = 0; i < record.Length; i++)
                {
                    record[i] ??= string.Empty;
                }
            }

            rows.Add(record);
        }

        if (rows.Count == 0)
        {
            throw new TrainingDataException($"Data file '{path}' has a header but no data rows.");
        }

        return new CsvTable(path, header, rows);
    }

    /// <summary>Writes the table back as CSV (quoting where needed), e.g. with rows filtered out.</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<string[]> rows)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        writer.WriteLine(string.Join(',', header.Select(Quote)));
        foreach (var row in rows)
        {
            writer.WriteLine(string.Join(',', row.Select(Quote)));
        }
    }

    private static string Quote(string cell) =>
        cell.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + cell.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : cell;

    private static string[]? ReadRecord(TextReader reader)
    {
        var first = reader.Peek();
        if (first < 0)
        {
            return null;
        }

        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        while (true)
        {
            var c = reader.Read();
            if (c < 0)
            {
                fields.Add(field.ToString());
                return [.. fields];
            }

            if (quoted)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        field.Append('"');
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    field.Append((char)c);
                }

                continue;
            }

            switch (c)
            {
                case '"' when field.Length == 0:
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    return [.. fields];
                default:
                    field.Append((char)c);
                    break;
            }
        }
    }
}
