using System.Text.Json;
using System.Text.Json.Serialization;

namespace Capstan.Training.Tabular;

/// <summary>One graph input or output: its name, its Open Inference Protocol v2 datatype and its shape (-1: any size).</summary>
public sealed record TensorSpec(string Name, string Datatype, IReadOnlyList<long> Shape)
{
    /// <summary>ONNX TensorProto.DataType to the OIP v2 datatype names serving uses.</summary>
    public static string DatatypeOf(int onnxElementType) => onnxElementType switch
    {
        1 => "FP32",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "BYTES",
        9 => "BOOL",
        10 => "FP16",
        11 => "FP64",
        12 => "UINT32",
        13 => "UINT64",
        16 => "BF16",
        _ => $"ONNX_{onnxElementType}",
    };

    /// <summary>The numpy dtype MLflow's tensor-spec signatures use.</summary>
    [JsonIgnore]
    public string NumpyDtype => Datatype switch
    {
        "FP32" => "float32",
        "FP64" => "float64",
        "FP16" => "float16",
        "BF16" => "bfloat16", // ml_dtypes' name; numpy itself has none
        "BYTES" => "object",
        "BOOL" => "bool",
        _ => Datatype.ToLowerInvariant(),
    };
}

/// <summary>The <c>signature.json</c> written next to <c>model.onnx</c>: what goes in and out, and what the outputs mean.</summary>
public sealed record OnnxSignature(
    string Task,
    string Label,
    IReadOnlyList<string> Classes,
    IReadOnlyList<TensorSpec> Inputs,
    IReadOnlyList<TensorSpec> Outputs)
{
    public string Format => "onnx";

    public void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, TrainingJson.Default.OnnxSignature) + "\n");

    public static OnnxSignature Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), TrainingJson.Default.OnnxSignature)
        ?? throw new TrainingDataException($"'{path}' is not a signature.");

    /// <summary>The inputs as an MLflow signature's tensor-spec JSON (for the model registry).</summary>
    public string MlflowInputs() => MlflowSpec(Inputs);

    public string MlflowOutputs() => MlflowSpec(Outputs);

    private static string MlflowSpec(IReadOnlyList<TensorSpec> specs) =>
        JsonSerializer.Serialize(
            specs.Select(s => new MlflowTensorSpec("tensor", new MlflowTensorShape(s.NumpyDtype, s.Shape), s.Name)).ToList(),
            TrainingJson.Default.ListMlflowTensorSpec);
}

internal sealed record MlflowTensorShape(string Dtype, IReadOnlyList<long> Shape);

internal sealed record MlflowTensorSpec(
    string Type,
    [property: JsonPropertyName("tensor-spec")] MlflowTensorShape TensorSpec,
    string Name);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(OnnxSignature))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(List<MlflowTensorSpec>))]
internal sealed partial class TrainingJson : JsonSerializerContext;
