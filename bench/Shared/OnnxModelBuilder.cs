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
    public const int BFloat16 = 16;

    private sealed record Node(string OpType, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, long[]>? Ints = null);

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

    /// <summary>y = x for one element type, shape [-1, width]; <paramref name="declaredOutput"/> makes the graph declare another output shape than it produces.</summary>
    public static byte[] Identity(int elemType, int width = 3, long[]? declaredOutput = null) => Model(
        "identity",
        [new Node("Identity", ["x"], ["y"])],
        [],
        [new Value("x", elemType, [-1, width])],
        [new Value("y", elemType, declaredOutput ?? [-1, width])]);

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

    /// <summary>
    /// A small image classifier (CIFAR-10 shape): x [-1, 3, size, size], a 3x3 convolution to
    /// <paramref name="channels"/> channels, <paramref name="blocks"/> more 3x3 convolutions at full
    /// resolution (same padding, ReLU after each), global average pooling, then class scores
    /// [-1, classes]. Its weights fit in a core's cache and every weight is used once per pixel,
    /// so a run is compute-bound: milliseconds of work for a 3,072-number request and a 10-number answer.
    /// </summary>
    public static byte[] SmallCnn(int size = 32, int channels = 32, int blocks = 6, int classes = 10, int seed = 3)
    {
        var random = new Random(seed);
        float[] Uniform(int n, double limit) => [.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2 - 1) * limit))];
        var same = new Dictionary<string, long[]> { ["kernel_shape"] = [3, 3], ["pads"] = [1, 1, 1, 1] };
        var nodes = new List<Node>();
        var initializers = new List<Initializer>();
        var previous = "x";
        var inChannels = 3;
        for (var i = 0; i <= blocks; i++)
        {
            // He-uniform weights keep the activations' scale through the ReLUs.
            initializers.Add(new Initializer($"w{i}", [channels, inChannels, 3, 3], Uniform(channels * inChannels * 9, Math.Sqrt(6.0 / (inChannels * 9)))));
            initializers.Add(new Initializer($"b{i}", [channels], Uniform(channels, 0.01)));
            nodes.Add(new Node("Conv", [previous, $"w{i}", $"b{i}"], [$"c{i}"], same));
            nodes.Add(new Node("Relu", [$"c{i}"], [$"r{i}"]));
            previous = $"r{i}";
            inChannels = channels;
        }

        initializers.Add(new Initializer("wc", [channels, classes], Uniform(channels * classes, Math.Sqrt(6.0 / channels))));
        initializers.Add(new Initializer("bc", [classes], Uniform(classes, 0.01)));
        nodes.Add(new Node("GlobalAveragePool", [previous], ["pooled"]));
        nodes.Add(new Node("Flatten", ["pooled"], ["features"]));
        nodes.Add(new Node("MatMul", ["features", "wc"], ["scores"]));
        nodes.Add(new Node("Add", ["scores", "bc"], ["y"]));
        return Model("small-cnn", nodes, initializers, [new Value("x", Float, [-1, 3, size, size])], [new Value("y", Float, [-1, classes])]);
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
                    foreach (var (attribute, values) in node.Ints ?? new Dictionary<string, long[]>())
                    {
                        // AttributeProto: name = 1, ints = 8, type = 20 (INTS = 7).
                        n.WriteTag(5, WireFormat.WireType.LengthDelimited);
                        n.WriteBytes(Message(a =>
                        {
                            a.WriteTag(1, WireFormat.WireType.LengthDelimited);
                            a.WriteString(attribute);
                            foreach (var value in values)
                            {
                                a.WriteTag(8, WireFormat.WireType.Varint);
                                a.WriteInt64(value);
                            }

                            a.WriteTag(20, WireFormat.WireType.Varint);
                            a.WriteInt32(7);
                        }));
                    }
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
