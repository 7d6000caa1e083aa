using System.Text.Json;
using Microsoft.ML;

namespace Capstan.Training.Tabular;

/// <summary>A trained pipeline, its final test metrics, and its export to ONNX.</summary>
public sealed class TabularModel
{
    public const string OnnxFileName = "model.onnx";
    public const string SignatureFileName = "signature.json";

    private readonly IDataView _featuresOnly;

    internal TabularModel(MLContext ml, ITransformer transformer, TabularSchema schema, IReadOnlyDictionary<string, double> metrics, IDataView featuresOnly, IDataView testSet)
    {
        Context = ml;
        Transformer = transformer;
        Schema = schema;
        Metrics = metrics;
        _featuresOnly = featuresOnly;
        TestSet = testSet;
    }

    public MLContext Context { get; }

    /// <summary>Feature columns in, <see cref="OutputColumns"/> out; what the ONNX file computes.</summary>
    public ITransformer Transformer { get; }

    public TabularSchema Schema { get; }

    public IReadOnlyDictionary<string, double> Metrics { get; }

    /// <summary>The held-out rows the metrics were measured on (feature columns by their CSV names).</summary>
    public IDataView TestSet { get; }

    /// <summary>The ML.NET columns exported as graph outputs, and the names the outputs get in the ONNX graph.</summary>
    public IReadOnlyDictionary<string, string> OutputColumns => Schema.Task switch
    {
        TabularTask.Regression => new Dictionary<string, string> { ["Score"] = "prediction" },
        TabularTask.Binary => new Dictionary<string, string> { ["PredictedLabel"] = "label", ["Probability"] = "probability" },
        _ => new Dictionary<string, string> { ["PredictedLabel"] = "label", ["Score"] = "probabilities" },
    };

    /// <summary>Writes <c>model.onnx</c> and <c>signature.json</c> into <paramref name="directory"/>.</summary>
    public OnnxSignature ExportOnnx(string directory)
    {
        Directory.CreateDirectory(directory);
        using var buffer = new MemoryStream();
        try
        {
            Context.Model.ConvertToOnnx(Transformer, _featuresOnly, buffer, [.. OutputColumns.Keys]);
        }
        catch (NotSupportedException ex)
        {
            throw new TrainingDataException($"This model cannot be exported to ONNX: {ex.Message}");
        }

        // Serving reads what the model means from the graph itself.
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["capstan.task"] = Schema.Task.ToString().ToLowerInvariant(),
            ["capstan.label"] = Schema.Label,
        };
        if (Schema.Classes.Count > 0)
        {
            metadata["capstan.classes"] = JsonSerializer.Serialize(Schema.Classes, TrainingJson.Default.IReadOnlyListString);
        }

        // ML.NET names outputs "<column>.output" and adds unused ones; serving shows plain names.
        var renames = OutputColumns.ToDictionary(c => c.Key + ".output", c => c.Value, StringComparer.Ordinal);
        var bytes = OnnxModelFile.AddMetadata(OnnxModelFile.RenameOutputs(buffer.ToArray(), renames), metadata);
        File.WriteAllBytes(Path.Combine(directory, OnnxFileName), bytes);
        var graph = OnnxModelFile.ReadGraph(bytes);
        var signature = new OnnxSignature(Schema.Task.ToString().ToLowerInvariant(), Schema.Label, Schema.Classes, graph.Inputs, graph.Outputs);
        signature.Write(Path.Combine(directory, SignatureFileName));
        return signature;
    }
}
