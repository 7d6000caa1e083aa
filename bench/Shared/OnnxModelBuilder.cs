using Google.Protobuf;

namespace Capstan.Testing;

/// <summary>
/// Writes small ONNX models (ModelProto bytes) with protobuf's CodedOutputStream and the field
/// numbers of onnx.proto, so tests and benchmarks need no Python: an MLP, an identity model per
/// datatype, and a heavier MatMul chain.
/// </summary>
public static class OnnxModelBuilder
{
    // onnx.proto TensorProto.DataType
    public const int Float = 1;
    public const int Uint8 = 2;
    public const int Int8 = 3;
    public const int Int32 = 6;
    public const int Int64 = 7;
    public const int Bool = 9;
    public const int Float16 = 10;
    public const int Double = 11;

    private sealed record Node(string OpType, string[] Inputs, string[] Outputs);

    private sealed record Initializer(string Name, long[] Dims, float[] Values);

    private sealed record Value(string Name, int ElemType, long[] Dims);

    /// <summary>y = relu(x·W1 + b1)·W2 + b2 with x [-1, inputs]; deterministic weights.</summary>
    public static byte[] Mlp(int inputs = 64, int hidden = 1024, int outputs = 32, int seed = 1)
    {
        var random = new Random(seed);
        float[] Weights(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5) * 0.2f)];
        return Model(
            "mlp",
            [new Node("MatMul", ["x", "w1"], ["h0"]), new Node("Add", ["h0", "b1"], ["h1"]), new Node("Relu", ["h1"], ["h2"]), new Node("MatMul", ["h2", "w2"], ["h3"]), new Node("Add", ["h3", "b2"], ["y"])],
            [new Initializer("w1", [inputs, hidden], Weights(inputs * hidden)), new Initializer("b1", [hidden], Weights(hidden)), new Initializer("w2", [hidden, outputs], Weights(hidden * outputs)), new Initializer("b2", [outputs], Weights(outputs))],
            [new Value("x", Float, [-1, inputs])],
            [new Value("y", Float, [-1, outputs])]);
    }

    /// <summary>y = x for one element type, shape [-1, width].</summary>
    public static byte[] Identity(int elemType, int width = 3) => Model(
        "identity",
        [new Node("Identity", ["x"], ["y"])],
        [],
        [new Value("x", elemType, [-1, width])],
        [new Value("y", elemType, [-1, width])]);

    /// <summary>y = x · W repeated <paramref name="layers"/> times with W [size, size]: about 2·size²·layers flops per row.</summary>
    public static byte[] Heavy(int size = 512, int layers = 8, int seed = 2)
    {
        var random = new Random(seed);
        var nodes = new List<Node>();
        var initializers = new List<Initializer>();
        var previous = "x";
        for (var i = 0; i < layers; i++)
        {
            initializers.Add(new Initializer($"w{i}", [size, size], [.. Enumerable.Range(0, size * size).Select(_ => (float)(random.NextDouble() - 0.5) * 0.05f)]));
            var output = i == layers - 1 ? "y" : $"h{i}";
            nodes.Add(new Node("MatMul", [previous, $"w{i}"], [output]));
            previous = output;
        }

        return Model("heavy", nodes, initializers, [new Value("x", Float, [-1, size])], [new Value("y", Float, [-1, size])]);
    }

    private static byte[] Model(string name, IReadOnlyList<Node> nodes, IReadOnlyList<Initializer> initializers, IReadOnlyList<Value> inputs, IReadOnlyList<Value> outputs)
    {
        var graph = Message(o =>
        {
            foreach (var node in nodes)
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(Message(n =>
                {
                    foreach (var input in node.Inputs)
                    {
                        n.WriteTag(1, WireFormat.WireType.LengthDelimited);
                        n.WriteString(input);
                    }

                    foreach (var output in node.Outputs)
                    {
                        n.WriteTag(2, WireFormat.WireType.LengthDelimited);
                        n.WriteString(output);
                    }

                    n.WriteTag(4, WireFormat.WireType.LengthDelimited);
                    n.WriteString(node.OpType);
                }));
            }

            o.WriteTag(2, WireFormat.WireType.LengthDelimited);
            o.WriteString(name);
            foreach (var initializer in initializers)
            {
                o.WriteTag(5, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(Message(t =>
                {
                    foreach (var dim in initializer.Dims)
                    {
                        t.WriteTag(1, WireFormat.WireType.Varint);
                        t.WriteInt64(dim);
                    }

                    t.WriteTag(2, WireFormat.WireType.Varint);
                    t.WriteInt32(Float);
                    t.WriteTag(8, WireFormat.WireType.LengthDelimited);
                    t.WriteString(initializer.Name);
                    var raw = new byte[initializer.Values.Length * 4];
                    Buffer.BlockCopy(initializer.Values, 0, raw, 0, raw.Length);
                    t.WriteTag(9, WireFormat.WireType.LengthDelimited);
                    t.WriteBytes(ByteString.CopyFrom(raw));
                }));
            }

            foreach (var input in inputs)
            {
                o.WriteTag(11, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ValueInfo(input));
            }

            foreach (var output in outputs)
            {
                o.WriteTag(12, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ValueInfo(output));
            }
        });

        return Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(8); // ir_version
            o.WriteTag(7, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(graph);
            o.WriteTag(8, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(Message(op =>
            {
                op.WriteTag(1, WireFormat.WireType.LengthDelimited);
                op.WriteString(string.Empty);
                op.WriteTag(2, WireFormat.WireType.Varint);
                op.WriteInt64(17);
            }));
        }).ToByteArray();
    }

    private static ByteString ValueInfo(Value value) => Message(v =>
    {
        v.WriteTag(1, WireFormat.WireType.LengthDelimited);
        v.WriteString(value.Name);
        v.WriteTag(2, WireFormat.WireType.LengthDelimited);
        v.WriteBytes(Message(type =>
        {
            type.WriteTag(1, WireFormat.WireType.LengthDelimited);
            type.WriteBytes(Message(tensor =>
            {
                tensor.WriteTag(1, WireFormat.WireType.Varint);
                tensor.WriteInt32(value.ElemType);
                tensor.WriteTag(2, WireFormat.WireType.LengthDelimited);
                tensor.WriteBytes(Message(shape =>
                {
                    foreach (var dim in value.Dims)
                    {
                        shape.WriteTag(1, WireFormat.WireType.LengthDelimited);
                        shape.WriteBytes(Message(d =>
                        {
                            if (dim < 0)
                            {
                                d.WriteTag(2, WireFormat.WireType.LengthDelimited);
                                d.WriteString("batch");
                            }
                            else
                            {
                                d.WriteTag(1, WireFormat.WireType.Varint);
                                d.WriteInt64(dim);
                            }
                        }));
                    }
                }));
            }));
        }));
    });

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(stream.ToArray());
    }
}
