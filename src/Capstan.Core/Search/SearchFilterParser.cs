using System.Globalization;

namespace Capstan.Core.Search;

/// <summary>
/// Parses MLflow's search grammar: a conjunction of comparisons joined by <c>AND</c>, such as
/// <c>metrics.acc &gt; 0.9 and params.lr = '0.01' and tags.team LIKE 'vision%'</c>, and order-by
/// clauses such as <c>metrics.acc DESC</c>. Keys with spaces or dots are quoted with backticks or
/// double quotes (<c>metrics.`val loss`</c>). Errors name the position and what was expected.
/// </summary>
public static class SearchFilterParser
{
    public static IReadOnlyList<Comparison> Parse(string? filter)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return [];
        }

        var reader = new Reader(filter);
        var comparisons = new List<Comparison>();
        while (true)
        {
            var (kind, key) = reader.ReadIdentifier();
            var op = reader.ReadOperator();
            var value = op is ComparisonOperator.In or ComparisonOperator.NotIn ? reader.ReadList() : reader.ReadValue();
            comparisons.Add(new Comparison(kind, key, op, value));
            reader.SkipSpace();
            if (reader.AtEnd)
            {
                return comparisons;
            }

            if (!reader.TryKeyword("AND"))
            {
                throw reader.Error("'AND' (only conjunctions are supported)");
            }
        }
    }

    public static OrderClause ParseOrderBy(string clause)
    {
        var reader = new Reader(clause);
        var (kind, key) = reader.ReadIdentifier();
        var ascending = true;
        reader.SkipSpace();
        if (reader.TryKeyword("DESC"))
        {
            ascending = false;
        }
        else
        {
            reader.TryKeyword("ASC");
        }

        reader.SkipSpace();
        if (!reader.AtEnd)
        {
            throw reader.Error("end of order_by clause after ASC or DESC");
        }

        return new OrderClause(kind, key, ascending);
    }

    public static IReadOnlyList<OrderClause> ParseOrderBy(IEnumerable<string>? clauses) =>
        clauses is null ? [] : clauses.Where(c => !string.IsNullOrWhiteSpace(c)).Select(ParseOrderBy).ToList();

    private static EntityKind? KindOf(string prefix) => prefix.ToLowerInvariant() switch
    {
        "metric" or "metrics" => EntityKind.Metric,
        "param" or "params" or "parameter" or "parameters" => EntityKind.Param,
        "tag" or "tags" => EntityKind.Tag,
        "attribute" or "attributes" or "attr" or "run" => EntityKind.Attribute,
        "dataset" or "datasets" => EntityKind.Dataset,
        _ => null,
    };

    private sealed class Reader(string text)
    {
        private int _pos;

        public bool AtEnd => _pos >= text.Length;

        public void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        public CapstanException Error(string expected)
        {
            var found = AtEnd ? "end of input" : $"'{text[_pos..Math.Min(text.Length, _pos + 12)]}'";
            return CapstanException.Invalid($"Invalid search expression '{text}': expected {expected} at position {_pos}, found {found}.");
        }

        public (EntityKind Kind, string Key) ReadIdentifier()
        {
            SkipSpace();
            if (AtEnd)
            {
                throw Error("an identifier such as metrics.acc, params.lr, tags.team or attributes.status");
            }

            if (text[_pos] is '`' or '"')
            {
                return (EntityKind.Attribute, ReadQuoted());
            }

            var start = _pos;
            while (_pos < text.Length && IsWordChar(text[_pos]))
            {
                _pos++;
            }

            if (_pos == start)
            {
                throw Error("an identifier");
            }

            var word = text[start.._pos];
            var dot = word.IndexOf('.', StringComparison.Ordinal);
            if (dot < 0)
            {
                return (EntityKind.Attribute, word);
            }

            var prefix = word[..dot];
            var kind = KindOf(prefix) ?? throw CapstanException.Invalid(
                $"Invalid search expression '{text}': unknown entity type '{prefix}'. Valid types are metrics, params, tags, attributes and datasets.");
            var key = word[(dot + 1)..];
            if (key.Length == 0)
            {
                if (_pos < text.Length && text[_pos] is '`' or '"')
                {
                    key = ReadQuoted();
                }
                else
                {
                    throw Error($"a key after '{prefix}.'");
                }
            }

            return (kind, key);
        }

        public ComparisonOperator ReadOperator()
        {
            SkipSpace();
            if (TrySymbol("!=") || TrySymbol("<>"))
            {
                return ComparisonOperator.NotEqual;
            }

            if (TrySymbol(">="))
            {
                return ComparisonOperator.GreaterThanOrEqual;
            }

            if (TrySymbol("<="))
            {
                return ComparisonOperator.LessThanOrEqual;
            }

            if (TrySymbol("=="))
            {
                return ComparisonOperator.Equal;
            }

            if (TrySymbol("="))
            {
                return ComparisonOperator.Equal;
            }

            if (TrySymbol(">"))
            {
                return ComparisonOperator.GreaterThan;
            }

            if (TrySymbol("<"))
            {
                return ComparisonOperator.LessThan;
            }

            if (TryKeyword("LIKE"))
            {
                return ComparisonOperator.Like;
            }

            if (TryKeyword("ILIKE"))
            {
                return ComparisonOperator.ILike;
            }

            if (TryKeyword("IN"))
            {
                return ComparisonOperator.In;
            }

            if (TryKeyword("NOT"))
            {
                SkipSpace();
                if (TryKeyword("IN"))
                {
                    return ComparisonOperator.NotIn;
                }

                throw Error("IN after NOT");
            }

            throw Error("a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN)");
        }

        public SearchValue ReadValue()
        {
            SkipSpace();
            if (AtEnd)
            {
                throw Error("a value");
            }

            if (text[_pos] is '\'' or '"')
            {
                return new SearchValue(Text: ReadQuoted());
            }

            var start = _pos;
            while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] is '.' or '-' or '+'))
            {
                _pos++;
            }

            var token = text[start.._pos];
            if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return new SearchValue(Number: number);
            }

            _pos = start;
            throw Error("a number or a quoted string");
        }

        public SearchValue ReadList()
        {
            SkipSpace();
            if (!TrySymbol("("))
            {
                throw Error("'(' starting a list of quoted strings");
            }

            var items = new List<string>();
            while (true)
            {
                SkipSpace();
                if (AtEnd || text[_pos] is not ('\'' or '"'))
                {
                    throw Error("a quoted string in the list");
                }

                items.Add(ReadQuoted());
                SkipSpace();
                if (TrySymbol(")"))
                {
                    return new SearchValue(List: items);
                }

                if (!TrySymbol(","))
                {
                    throw Error("',' or ')' in the list");
                }
            }
        }

        public bool TryKeyword(string keyword)
        {
            SkipSpace();
            if (_pos + keyword.Length > text.Length
                || string.Compare(text, _pos, keyword, 0, keyword.Length, StringComparison.OrdinalIgnoreCase) != 0
                || (_pos + keyword.Length < text.Length && IsWordChar(text[_pos + keyword.Length])))
            {
                return false;
            }

            _pos += keyword.Length;
            return true;
        }

        private bool TrySymbol(string symbol)
        {
            if (string.CompareOrdinal(text, _pos, symbol, 0, symbol.Length) != 0)
            {
                return false;
            }

            _pos += symbol.Length;
            return true;
        }

        /// <summary>Reads a string in ', " or ` quotes; a doubled quote or a backslash escapes it.</summary>
        private string ReadQuoted()
        {
            var quote = text[_pos++];
            var sb = new System.Text.StringBuilder();
            while (_pos < text.Length)
            {
                var c = text[_pos++];
                if (c == '\\' && _pos < text.Length)
                {
                    sb.Append(text[_pos++]);
                }
                else if (c == quote)
                {
                    if (_pos < text.Length && text[_pos] == quote)
                    {
                        sb.Append(quote);
                        _pos++;
                    }
                    else
                    {
                        return sb.ToString();
                    }
                }
                else
                {
                    sb.Append(c);
                }
            }

            throw Error($"a closing {quote}");
        }

        private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '.' or '-' or '/' or ':';
    }
}
