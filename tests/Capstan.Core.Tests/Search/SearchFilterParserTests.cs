using Capstan.Core;
using Capstan.Core.Search;

namespace Capstan.Core.Tests.Search;

public sealed class SearchFilterParserTests
{
    [Fact]
    public void Parse_MlflowConjunction_ReturnsEachComparison()
    {
        var filter = "metrics.acc > 0.9 and params.lr = '0.01' and tags.team LIKE 'vision%' and attributes.status = 'FINISHED'";

        var comparisons = SearchFilterParser.Parse(filter);

        Assert.Equal(
            [
                new Comparison(EntityKind.Metric, "acc", ComparisonOperator.GreaterThan, new SearchValue(Number: 0.9)),
                new Comparison(EntityKind.Param, "lr", ComparisonOperator.Equal, new SearchValue(Text: "0.01")),
                new Comparison(EntityKind.Tag, "team", ComparisonOperator.Like, new SearchValue(Text: "vision%")),
                new Comparison(EntityKind.Attribute, "status", ComparisonOperator.Equal, new SearchValue(Text: "FINISHED")),
            ],
            comparisons);
    }

    [Theory]
    [InlineData("metrics.`val loss` <= 1e-3", EntityKind.Metric, "val loss", ComparisonOperator.LessThanOrEqual)]
    [InlineData("metric.\"f1 score\" != -2", EntityKind.Metric, "f1 score", ComparisonOperator.NotEqual)]
    [InlineData("params.model.depth = \"4\"", EntityKind.Param, "model.depth", ComparisonOperator.Equal)]
    [InlineData("tags.`mlflow.runName` ILIKE '%Fox%'", EntityKind.Tag, "mlflow.runName", ComparisonOperator.ILike)]
    [InlineData("name LIKE 'iris%'", EntityKind.Attribute, "name", ComparisonOperator.Like)]
    [InlineData("datasets.digest = 'abc'", EntityKind.Dataset, "digest", ComparisonOperator.Equal)]
    [InlineData("run.start_time >= 1700000000000", EntityKind.Attribute, "start_time", ComparisonOperator.GreaterThanOrEqual)]
    public void Parse_IdentifierForms_ResolveKindAndKey(string filter, EntityKind kind, string key, ComparisonOperator op)
    {
        var comparison = Assert.Single(SearchFilterParser.Parse(filter));

        Assert.Equal((kind, key, op), (comparison.Kind, comparison.Key, comparison.Operator));
    }

    [Fact]
    public void Parse_InList_ReturnsAllItems()
    {
        var comparison = Assert.Single(SearchFilterParser.Parse("attributes.run_id NOT IN ('a1', \"b2\",'c''3')"));

        Assert.Equal(ComparisonOperator.NotIn, comparison.Operator);
        Assert.Equal(["a1", "b2", "c'3"], comparison.Value.List!);
    }

    [Fact]
    public void Parse_KeywordsAnyCase_AreAccepted()
    {
        var comparisons = SearchFilterParser.Parse("tags.a like 'x' AND tags.b In ('y') anD metrics.m<1");

        Assert.Equal(3, comparisons.Count);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("   ", 0)]
    [InlineData(null, 0)]
    public void Parse_Empty_ReturnsNoComparisons(string? filter, int count)
    {
        Assert.Equal(count, SearchFilterParser.Parse(filter).Count);
    }

    [Theory]
    [InlineData("metrics.acc > 0.9 or params.lr = '1'", "'AND'")]
    [InlineData("metrics.acc 0.9", "comparison operator")]
    [InlineData("params.lr = 'unterminated", "closing '")]
    [InlineData("foo.bar = 'x'", "unknown entity type 'foo'")]
    [InlineData("metrics.acc > ", "a value")]
    [InlineData("attributes.run_id IN 'a'", "'('")]
    [InlineData("metrics.acc > abc", "a number or a quoted string")]
    public void Parse_Malformed_ThrowsInvalidParameterNamingTheProblem(string filter, string expected)
    {
        var error = Assert.Throws<CapstanException>(() => SearchFilterParser.Parse(filter));

        Assert.Equal(ErrorCode.InvalidParameterValue, error.Code);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("metrics.acc DESC", EntityKind.Metric, "acc", false)]
    [InlineData("attributes.start_time", EntityKind.Attribute, "start_time", true)]
    [InlineData("params.`learning rate` asc", EntityKind.Param, "learning rate", true)]
    [InlineData("name", EntityKind.Attribute, "name", true)]
    public void ParseOrderBy_Clause_ReturnsKindKeyAndDirection(string clause, EntityKind kind, string key, bool ascending)
    {
        Assert.Equal(new OrderClause(kind, key, ascending), SearchFilterParser.ParseOrderBy(clause));
    }

    [Fact]
    public void ParseOrderBy_TrailingGarbage_Throws()
    {
        Assert.Throws<CapstanException>(() => SearchFilterParser.ParseOrderBy("metrics.acc DESC extra"));
    }
}
