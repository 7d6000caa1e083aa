using Capstan.Training.Tabular;

namespace Capstan.Training.Tests;

public sealed class TabularSchemaTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("capstan-schema-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Theory]
    [InlineData("yes,no,yes,no", TabularTask.Binary)]
    [InlineData("true,false,true,true", TabularTask.Binary)]
    [InlineData("a,b,c,a", TabularTask.Multiclass)]
    [InlineData("1,2,3,1", TabularTask.Multiclass)]
    [InlineData("1.5,2.25,3.0,7.75", TabularTask.Regression)]
    public void Infer_AutoTask_PicksTaskFromLabelValues(string labels, TabularTask expected)
    {
        var csv = Write("x,label\n" + string.Concat(labels.Split(',').Select((l, i) => $"{i},{l}\n")));

        var schema = TabularSchema.Infer(CsvTable.Read(csv), "label", TabularTask.Auto);

        Assert.Equal(expected, schema.Task);
    }

    [Fact]
    public void Infer_MixedColumns_NumericWithGapsAndTextBecomeFloatAndOneHot()
    {
        var csv = Write("size,colour,note,label\n1.5,red,\"a, quoted\",x\n,blue,b,y\n2,red,c,x\n");

        var schema = TabularSchema.Infer(CsvTable.Read(csv), "label", TabularTask.Auto);

        Assert.Equal(
            ["size Numeric missing", "colour Categorical", "note Categorical"],
            schema.Features.Select(f => $"{f.Name} {f.Kind}{(f.HasMissing ? " missing" : string.Empty)}"));
        Assert.Equal(["x", "y"], schema.Classes);
    }

    [Fact]
    public void Infer_BinaryYesNo_PositiveClassIsYes()
    {
        var csv = Write("x,label\n1,yes\n2,no\n");

        Assert.Equal(["no", "yes"], TabularSchema.Infer(CsvTable.Read(csv), "label", TabularTask.Auto).Classes);
    }

    [Fact]
    public void Read_HeaderOnly_SaysThereAreNoDataRows()
    {
        var csv = Write("x,label\n");

        var error = Assert.Throws<TrainingDataException>(() => CsvTable.Read(csv));

        Assert.Contains("has a header but no data rows", error.Message, StringComparison.Ordinal);
    }

    private string Write(string text)
    {
        var path = Path.Combine(_folder.FullName, $"{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, text);
        return path;
    }
}
