using Google.Protobuf;

namespace Capstan.Training.Tabular;

/// <summary>
/// Reads and amends the few parts of an ONNX <c>ModelProto</c> the trainer needs, straight from
/// the protobuf wire format (ML.NET keeps its generated ONNX classes internal): the graph's inputs
/// and outputs with their element types and shapes, and <c>metadata_props</c>.
/// </summary>
public static class OnnxModelFile
{
    // Field numbers from onnx.proto.
    private const int ModelGraph = 7;
    private const int ModelMetadataProps = 14;
    private const int GraphInput = 11;
    private const int GraphOutput = 12;
    private const int ValueInfoName = 1;
    private const int ValueInfoType = 2;
    private const int TypeTensor = 1;
    private const int TensorElemType = 1;
    private const int TensorShape = 2;
    private const int ShapeDim = 1;
    private const int DimValue = 1;

    public sealed record Graph(IReadOnlyList<TensorSpec> Inputs, IReadOnlyList<TensorSpec> Outputs);

    public static Graph ReadGraph(byte[] model)
    {
        var inputs = new List<TensorSpec>();
        var outputs = new List<TensorSpec>();
        foreach (var (field, value) in Fields(model))
        {
            if (field != ModelGraph)
            {
                continue;
            }

            foreach (var (graphField, graphValue) in Fields(value))
            {
                if (graphField == GraphInput)
                {
                    inputs.Add(ReadValueInfo(graphValue));
                }
                else if (graphField == GraphOutput)
                {
                    outputs.Add(ReadValueInfo(graphValue));
                }
            }
        }

        return new Graph(inputs, outputs);
    }

    /// <summary>Appends <c>metadata_props</c> entries; protobuf merges repeated fields that come later.</summary>
    public static byte[] AddMetadata(byte[] model, IReadOnlyDictionary<string, string> entries)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(entries);
        using var buffer = new MemoryStream();
        buffer.Write(model);
        var output = new CodedOutputStream(buffer, leaveOpen: true);
        foreach (var (key, value) in entries)
        {
            using var entry = new MemoryStream();
            var entryOutput = new CodedOutputStream(entry, leaveOpen: true);
            entryOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
            entryOutput.WriteString(key);
            entryOutput.WriteTag(2, WireFormat.WireType.LengthDelimited);
            entryOutput.WriteString(value);
            entryOutput.Flush();
            output.WriteTag(ModelMetadataProps, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(entry.ToArray()));
        }

        output.Flush();
        return buffer.ToArray();
    }

    /// <summary>
    /// Gives the graph outputs the names in <paramref name="renames"/> (through Identity nodes, so
    /// the graph's own value names stay intact) and drops the outputs not named there, such as
    /// ML.NET's <c>mlnet.*.unusedOutput</c>.
    /// </summary>
    public static byte[] RenameOutputs(byte[] model, IReadOnlyDictionary<string, string> renames)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(renames);
        return Rewrite(model, (field, value, output) =>
        {
            if (field != ModelGraph)
            {
                return false;
            }

            output.WriteTag(ModelGraph, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(RenameGraphOutputs(value.ToByteArray(), renames)));
            return true;
        });
    }

    private static byte[] RenameGraphOutputs(byte[] graph, IReadOnlyDictionary<string, string> renames)
    {
        var outputs = new List<(string Name, ByteString ValueInfo)>();
        var rewritten = Rewrite(graph, (field, value, _) =>
        {
            if (field != GraphOutput)
            {
                return false;
            }

            var name = Fields(value).FirstOrDefault(f => f.Field == ValueInfoName).Value?.ToStringUtf8() ?? string.Empty;
            outputs.Add((name, value));
            return true; // dropped here, written again below under the new name
        });

        using var buffer = new MemoryStream();
        buffer.Write(rewritten);
        var writer = new CodedOutputStream(buffer, leaveOpen: true);
        foreach (var (name, valueInfo) in outputs)
        {
            if (!renames.TryGetValue(name, out var renamed))
            {
                continue;
            }

            writer.WriteTag(1, WireFormat.WireType.LengthDelimited); // GraphProto.node
            writer.WriteBytes(Message(node =>
            {
                node.WriteTag(1, WireFormat.WireType.LengthDelimited); // input
                node.WriteString(name);
                node.WriteTag(2, WireFormat.WireType.LengthDelimited); // output
                node.WriteString(renamed);
                node.WriteTag(3, WireFormat.WireType.LengthDelimited); // name
                node.WriteString("capstan_output_" + renamed);
                node.WriteTag(4, WireFormat.WireType.LengthDelimited); // op_type
                node.WriteString("Identity");
            }));
            writer.WriteTag(GraphOutput, WireFormat.WireType.LengthDelimited);
            writer.WriteBytes(ByteString.CopyFrom(Rewrite(valueInfo.ToByteArray(), (field, _, info) =>
            {
                if (field != ValueInfoName)
                {
                    return false;
                }

                info.WriteTag(ValueInfoName, WireFormat.WireType.LengthDelimited);
                info.WriteString(renamed);
                return true;
            })));
        }

        writer.Flush();
        return buffer.ToArray();
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, leaveOpen: true);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(buffer.ToArray());
    }

    /// <summary>Copies a message field by field; <paramref name="replace"/> writes (or drops) a length-delimited field itself by returning true.</summary>
    private static byte[] Rewrite(byte[] message, Func<int, ByteString, CodedOutputStream, bool> replace)
    {
        var input = new CodedInputStream(message);
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, leaveOpen: true);
        while (input.ReadTag() is var tag and not 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.Varint:
                    output.WriteTag(tag);
                    output.WriteUInt64(input.ReadUInt64());
                    break;
                case WireFormat.WireType.Fixed32:
                    output.WriteTag(tag);
                    output.WriteFixed32(input.ReadFixed32());
                    break;
                case WireFormat.WireType.Fixed64:
                    output.WriteTag(tag);
                    output.WriteFixed64(input.ReadFixed64());
                    break;
                case WireFormat.WireType.LengthDelimited:
                    var value = input.ReadBytes();
                    if (!replace(field, value, output))
                    {
                        output.WriteTag(tag);
                        output.WriteBytes(value);
                    }

                    break;
                default:
                    throw new InvalidDataException($"Unexpected protobuf wire type in field {field}.");
            }
        }

        output.Flush();
        return buffer.ToArray();
    }

    /// <summary>The <c>metadata_props</c> of a model, later entries winning.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(byte[] model)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, value) in Fields(model))
        {
            if (field == ModelMetadataProps)
            {
                string? key = null, text = null;
                foreach (var (entryField, entryValue) in Fields(value))
                {
                    if (entryField == 1)
                    {
                        key = entryValue.ToStringUtf8();
                    }
                    else if (entryField == 2)
                    {
                        text = entryValue.ToStringUtf8();
                    }
                }

                if (key is not null)
                {
                    metadata[key] = text ?? string.Empty;
                }
            }
        }

        return metadata;
    }

    private static TensorSpec ReadValueInfo(ByteString valueInfo)
    {
        var name = string.Empty;
        var elementType = 0;
        var shape = new List<long>();
        foreach (var (field, value) in Fields(valueInfo))
        {
            if (field == ValueInfoName)
            {
                name = value.ToStringUtf8();
            }
            else if (field == ValueInfoType)
            {
                foreach (var (typeField, typeValue) in Fields(value))
                {
                    if (typeField != TypeTensor)
                    {
                        continue;
                    }

                    var tensor = new CodedInputStream(typeValue.ToByteArray());
                    while (tensor.ReadTag() is var tag and not 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(tag))
                        {
                            case TensorElemType:
                                elementType = tensor.ReadInt32();
                                break;
                            case TensorShape:
                                foreach (var (shapeField, dim) in Fields(tensor.ReadBytes()))
                                {
                                    if (shapeField == ShapeDim)
                                    {
                                        shape.Add(ReadDimension(dim));
                                    }
                                }

                                break;
                            default:
                                tensor.SkipLastField();
                                break;
                        }
                    }
                }
            }
        }

        return new TensorSpec(name, TensorSpec.DatatypeOf(elementType), shape);
    }

    /// <summary>A fixed size, or -1 for a symbolic (dynamic) one.</summary>
    private static long ReadDimension(ByteString dimension)
    {
        var input = new CodedInputStream(dimension.ToByteArray());
        while (input.ReadTag() is var tag and not 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == DimValue && WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint)
            {
                var size = input.ReadInt64();
                return size > 0 ? size : -1;
            }

            input.SkipLastField();
        }

        return -1;
    }

    /// <summary>The length-delimited fields of a message; other wire types are skipped.</summary>
    private static IEnumerable<(int Field, ByteString Value)> Fields(byte[] message) => Fields(ByteString.CopyFrom(message));

    private static IEnumerable<(int Field, ByteString Value)> Fields(ByteString message)
    {
        var input = new CodedInputStream(message.ToByteArray());
        var fields = new List<(int, ByteString)>();
        while (input.ReadTag() is var tag and not 0)
        {
            if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                fields.Add((WireFormat.GetTagFieldNumber(tag), input.ReadBytes()));
            }
            else
            {
                input.SkipLastField();
            }
        }

        return fields;
    }
}
