namespace Capstan.Serving.Models;

/// <summary>A model input or output as the protocol describes it; -1 in <see cref="Shape"/> marks a dynamic dimension.</summary>
public sealed record TensorMetadata(string Name, OipDatatype Datatype, long[] Shape)
{
    /// <summary>True when dimension 0 is dynamic, so requests can be concatenated along it.</summary>
    public bool IsBatchable => Shape.Length > 0 && Shape[0] == -1;
}

/// <summary>One loaded model version: what the graph declares and where it runs.</summary>
public sealed record ModelMetadata(
    string Name,
    string Version,
    IReadOnlyList<TensorMetadata> Inputs,
    IReadOnlyList<TensorMetadata> Outputs,
    string ExecutionProvider)
{
    /// <summary>The platform name Triton uses for ONNX Runtime models.</summary>
    public const string Platform = "onnxruntime_onnx";

    public TensorMetadata? FindInput(string name)
    {
        foreach (var input in Inputs)
        {
            if (input.Name == name)
            {
                return input;
            }
        }

        return null;
    }

    public TensorMetadata? FindOutput(string name)
    {
        foreach (var output in Outputs)
        {
            if (output.Name == name)
            {
                return output;
            }
        }

        return null;
    }
}
