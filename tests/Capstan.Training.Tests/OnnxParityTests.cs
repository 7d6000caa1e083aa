using Capstan.Training.Tabular;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Training.Tests;

/// <summary>The exported model.onnx, run by ONNX Runtime, predicts what ML.NET predicts.</summary>
public sealed class OnnxParityTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("capstan-training-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Theory]
    [InlineData(TabularAlgorithm.LightGbm)]
    [InlineData(TabularAlgorithm.FastTree)]
    [InlineData(TabularAlgorithm.Sdca)]
    public void IrisMulticlass_ExportedOnnx_PredictsSameSpeciesAsMlNet(TabularAlgorithm algorithm)
    {
        var model = Train(DataFiles.Iris, new TabularTrainingOptions("species", algorithm));

        Assert.Equal(TabularTask.Multiclass, model.Schema.Task);
        Assert.True(model.Metrics["accuracy"] >= 0.85, $"accuracy {model.Metrics["accuracy"]}");
        var signature = model.ExportOnnx(_folder.FullName);
        Assert.Equal(["petal_length", "petal_width", "sepal_length", "sepal_width"], signature.Inputs.Select(i => i.Name).Order());
        Assert.All(signature.Inputs, i => Assert.Equal("FP32 [-1,1]", $"{i.Datatype} [{string.Join(',', i.Shape)}]"));

        var expected = ReadColumn<ReadOnlyMemory<char>>(model, "PredictedLabel").Select(v => v.ToString()).ToList();
        var actual = RunOnnx(model, signature).Single(o => o.Name == "label").AsEnumerable<string>().ToList();

        Assert.Equal(expected, actual);
        Assert.Equal(["label BYTES [-1,1]", "probabilities FP32 [-1,3]"], signature.Outputs.Select(o => $"{o.Name} {o.Datatype} [{string.Join(',', o.Shape)}]"));
        var metadata = OnnxModelFile.ReadMetadata(File.ReadAllBytes(Path.Combine(_folder.FullName, TabularModel.OnnxFileName)));
        Assert.Equal("""["setosa","versicolor","virginica"]""", metadata["capstan.classes"]);
        Assert.Subset(new HashSet<string>(["setosa", "versicolor", "virginica"]), actual.ToHashSet());
    }

    [Theory]
    [InlineData(TabularAlgorithm.LightGbm)]
    [InlineData(TabularAlgorithm.FastTree)]
    [InlineData(TabularAlgorithm.Sdca)]
    public void RegressionWithCategory_ExportedOnnx_PredictsSameValuesAsMlNet(TabularAlgorithm algorithm)
    {
        var model = Train(DataFiles.WriteRegression(_folder.FullName), new TabularTrainingOptions("y", algorithm));

        Assert.Equal(TabularTask.Regression, model.Schema.Task);
        Assert.True(model.Metrics["r2"] >= 0.9, $"r2 {model.Metrics["r2"]}");
        var signature = model.ExportOnnx(Path.Combine(_folder.FullName, "model"));
        Assert.Equal("BYTES", signature.Inputs.Single(i => i.Name == "city").Datatype);

        var expected = ReadColumn<float>(model, "Score");
        var actual = RunOnnx(model, signature).Single(o => o.Name == "prediction").AsEnumerable<float>().ToList();

        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-3 * Math.Max(1, Math.Abs(expected[i])), $"row {i}: ML.NET {expected[i]}, ONNX {actual[i]}");
        }
    }

    [Theory]
    [InlineData(TabularAlgorithm.LightGbm)]
    [InlineData(TabularAlgorithm.FastTree)]
    [InlineData(TabularAlgorithm.Sdca)]
    public void BinaryWithCategory_ExportedOnnx_PredictsSameClassAsMlNet(TabularAlgorithm algorithm)
    {
        var model = Train(DataFiles.WriteBinary(_folder.FullName), new TabularTrainingOptions("approved", algorithm));

        Assert.Equal(TabularTask.Binary, model.Schema.Task);
        Assert.Equal(["no", "yes"], model.Schema.Classes);
        Assert.True(model.Metrics["accuracy"] >= 0.85, $"accuracy {model.Metrics["accuracy"]}");
        var signature = model.ExportOnnx(Path.Combine(_folder.FullName, "model"));

        var expected = ReadColumn<bool>(model, "PredictedLabel");
        var outputs = RunOnnx(model, signature);
        var actual = outputs.Single(o => o.Name == "label").AsEnumerable<bool>().ToList();
        var probabilities = outputs.Single(o => o.Name == "probability").AsEnumerable<float>().ToList();

        Assert.Equal(expected, actual);
        Assert.All(ReadColumn<float>(model, "Probability").Zip(probabilities), p => Assert.True(Math.Abs(p.First - p.Second) < 1e-4, $"ML.NET {p.First}, ONNX {p.Second}"));
    }

    private static TabularModel Train(string csv, TabularTrainingOptions options)
    {
        using var trainer = new TabularTrainer(CsvTable.Read(csv), options);
        return trainer.Train(cancellationToken: TestContext.Current.CancellationToken);
    }

    private static List<T> ReadColumn<T>(TabularModel model, string column) =>
        [.. model.Transformer.Transform(model.TestSet).GetColumn<T>(column)];

    private List<DisposableNamedOnnxValue> RunOnnx(TabularModel model, OnnxSignature signature)
    {
        using var session = new InferenceSession(Path.Combine(LastExport(), TabularModel.OnnxFileName));
        var inputs = new List<NamedOnnxValue>();
        foreach (var input in signature.Inputs)
        {
            if (input.Datatype == "BYTES")
            {
                var values = model.TestSet.GetColumn<ReadOnlyMemory<char>>(input.Name).Select(v => v.ToString()).ToArray();
                inputs.Add(NamedOnnxValue.CreateFromTensor(input.Name, new DenseTensor<string>(values, [values.Length, 1])));
            }
            else
            {
                var values = model.TestSet.GetColumn<float>(input.Name).ToArray();
                inputs.Add(NamedOnnxValue.CreateFromTensor(input.Name, new DenseTensor<float>(values, [values.Length, 1])));
            }
        }

        Assert.Equal(session.InputMetadata.Keys.Order(), signature.Inputs.Select(i => i.Name).Order());
        Assert.Equal(session.OutputMetadata.Keys.Order(), signature.Outputs.Select(i => i.Name).Order());
        return [.. session.Run(inputs)];
    }

    private string LastExport() =>
        Directory.EnumerateFiles(_folder.FullName, TabularModel.OnnxFileName, SearchOption.AllDirectories).OrderByDescending(File.GetLastWriteTimeUtc).First()[..^(TabularModel.OnnxFileName.Length + 1)];
}
