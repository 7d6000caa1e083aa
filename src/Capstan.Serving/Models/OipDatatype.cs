using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Serving.Models;

/// <summary>The tensor datatypes of the Open Inference Protocol, with their wire names.</summary>
public enum OipDatatype
{
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,

    /// <summary>bfloat16 (Triton's BF16): the upper half of an FP32; JSON carries it as numbers, rounded to nearest even.</summary>
    Bf16,
}

public static class OipDatatypes
{
    private static readonly string[] s_names = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"];
    private static readonly byte[][] s_utf8Names = [.. s_names.Select(System.Text.Encoding.ASCII.GetBytes)];
    private static readonly int[] s_sizes = [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 0, 2];

    public static string Name(this OipDatatype datatype) => s_names[(int)datatype];

    /// <summary>Bytes per element; 0 for BYTES, whose elements vary in length.</summary>
    public static int ElementSize(this OipDatatype datatype) => s_sizes[(int)datatype];

    public static bool TryParse(ReadOnlySpan<char> name, out OipDatatype datatype)
    {
        for (var i = 0; i < s_names.Length; i++)
        {
            if (name.Equals(s_names[i], StringComparison.Ordinal))
            {
                datatype = (OipDatatype)i;
                return true;
            }
        }

        datatype = default;
        return false;
    }

    public static bool TryParse(ReadOnlySpan<byte> utf8Name, out OipDatatype datatype)
    {
        for (var i = 0; i < s_names.Length; i++)
        {
            if (utf8Name.SequenceEqual(s_utf8Names[i]))
            {
                datatype = (OipDatatype)i;
                return true;
            }
        }

        datatype = default;
        return false;
    }

    /// <summary>The OIP datatype of an ONNX element type, or null when the protocol has none (complex, float8, int4).</summary>
    public static OipDatatype? FromOnnx(TensorElementType type) => type switch
    {
        TensorElementType.Bool => OipDatatype.Bool,
        TensorElementType.UInt8 => OipDatatype.Uint8,
        TensorElementType.UInt16 => OipDatatype.Uint16,
        TensorElementType.UInt32 => OipDatatype.Uint32,
        TensorElementType.UInt64 => OipDatatype.Uint64,
        TensorElementType.Int8 => OipDatatype.Int8,
        TensorElementType.Int16 => OipDatatype.Int16,
        TensorElementType.Int32 => OipDatatype.Int32,
        TensorElementType.Int64 => OipDatatype.Int64,
        TensorElementType.Float16 => OipDatatype.Fp16,
        TensorElementType.BFloat16 => OipDatatype.Bf16,
        TensorElementType.Float => OipDatatype.Fp32,
        TensorElementType.Double => OipDatatype.Fp64,
        TensorElementType.String => OipDatatype.Bytes,
        _ => null,
    };

    public static TensorElementType ToOnnx(this OipDatatype datatype) => datatype switch
    {
        OipDatatype.Bool => TensorElementType.Bool,
        OipDatatype.Uint8 => TensorElementType.UInt8,
        OipDatatype.Uint16 => TensorElementType.UInt16,
        OipDatatype.Uint32 => TensorElementType.UInt32,
        OipDatatype.Uint64 => TensorElementType.UInt64,
        OipDatatype.Int8 => TensorElementType.Int8,
        OipDatatype.Int16 => TensorElementType.Int16,
        OipDatatype.Int32 => TensorElementType.Int32,
        OipDatatype.Int64 => TensorElementType.Int64,
        OipDatatype.Fp16 => TensorElementType.Float16,
        OipDatatype.Bf16 => TensorElementType.BFloat16,
        OipDatatype.Fp32 => TensorElementType.Float,
        OipDatatype.Fp64 => TensorElementType.Double,
        _ => TensorElementType.String,
    };

    /// <summary>The bfloat16 nearest <paramref name="value"/> (ties to even; NaN stays NaN), as its 16 bits.</summary>
    public static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x0040); // quiet NaN, sign kept
        }

        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>The exact float value of a bfloat16.</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
