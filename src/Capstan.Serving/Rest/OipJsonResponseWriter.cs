using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;

namespace Capstan.Serving.Rest;

/// <summary>Writes an OIP v2 infer response with <see cref="Utf8JsonWriter"/>; binary outputs follow the JSON.</summary>
internal static class OipJsonResponseWriter
{
    /// <summary>Writes the JSON part into <paramref name="json"/>; returns whether any output goes as binary.</summary>
    public static bool Write(IBufferWriter<byte> json, InferRequest request, InferResponse response)
    {
        using var writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true });
        var anyBinary = false;
        writer.WriteStartObject();
        writer.WriteString("model_name"u8, response.ModelName);
        writer.WriteString("model_version"u8, response.ModelVersion);
        if (response.Id is not null)
        {
            writer.WriteString("id"u8, response.Id);
        }

        writer.WriteStartArray("outputs"u8);
        foreach (var output in response.Outputs)
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, output.Name);
            writer.WriteString("datatype"u8, output.Datatype.Name());
            writer.WriteStartArray("shape"u8);
            foreach (var dim in output.Shape)
            {
                writer.WriteNumberValue(dim);
            }

            writer.WriteEndArray();
            if (IsBinary(request, output.Name))
            {
                anyBinary = true;
                writer.WriteStartObject("parameters"u8);
                writer.WriteNumber("binary_data_size"u8, BinarySize(output));
                writer.WriteEndObject();
            }
            else if (output.Datatype != OipDatatype.Fp32 || !TryWriteSingles(writer, output.Bytes))
            {
                writer.WriteStartArray("data"u8);
                WriteData(writer, output);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
        return anyBinary;
    }

    public static bool IsBinary(InferRequest request, string output)
    {
        if (request.BinaryDataOutput)
        {
            return true;
        }

        foreach (var requested in request.Outputs)
        {
            if (requested.Name == output)
            {
                return requested.Binary;
            }
        }

        return false;
    }

    public static int BinarySize(InferTensor tensor)
    {
        if (tensor.Strings is null)
        {
            return tensor.ByteLength;
        }

        var size = 0;
        foreach (var s in tensor.Strings)
        {
            size += 4 + Encoding.UTF8.GetByteCount(s);
        }

        return size;
    }

    public static void WriteBinary(IBufferWriter<byte> destination, InferTensor tensor)
    {
        if (tensor.Strings is null)
        {
            destination.Write(tensor.Bytes);
            return;
        }

        foreach (var s in tensor.Strings)
        {
            var length = Encoding.UTF8.GetByteCount(s);
            var span = destination.GetSpan(4 + length);
            BinaryPrimitives.WriteInt32LittleEndian(span, length);
            Encoding.UTF8.GetBytes(s, span[4..]);
            destination.Advance(4 + length);
        }
    }

    /// <summary>
    /// FP32 data as one raw JSON array formatted by <see cref="JsonFloat"/> (the text Utf8JsonWriter would
    /// write, element by element, at a fraction of the cost); false, with nothing written, when a value is
    /// not finite, so the general path reports it as before.
    /// </summary>
    private static bool TryWriteSingles(Utf8JsonWriter writer, ReadOnlySpan<byte> bytes)
    {
        var count = bytes.Length / 4;
        var capacity = 2 + (count * (JsonFloat.MaxLength + 1));
        byte[]? rented = null;
        var text = capacity <= 2048 ? stackalloc byte[capacity] : (rented = ArrayPool<byte>.Shared.Rent(capacity));
        try
        {
            var at = 0;
            text[at++] = (byte)'[';
            for (var i = 0; i < count; i++)
            {
                if (i > 0)
                {
                    text[at++] = (byte)',';
                }

                var value = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                if (!JsonFloat.TryFormat(value, text[at..], out var written))
                {
                    if (!float.IsFinite(value) || !value.TryFormat(text[at..], out written, default, CultureInfo.InvariantCulture))
                    {
                        return false;
                    }
                }

                at += written;
            }

            text[at++] = (byte)']';
            writer.WritePropertyName("data"u8);
            writer.WriteRawValue(text[..at], skipInputValidation: true);
            return true;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static void WriteData(Utf8JsonWriter writer, InferTensor tensor)
    {
        var bytes = tensor.Bytes;
        switch (tensor.Datatype)
        {
            case OipDatatype.Bytes:
                foreach (var s in tensor.Strings!)
                {
                    writer.WriteStringValue(s);
                }

                break;
            case OipDatatype.Bool:
                foreach (var b in bytes)
                {
                    writer.WriteBooleanValue(b != 0);
                }

                break;
            case OipDatatype.Fp32:
                for (var i = 0; i < bytes.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadSingleLittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Fp64:
                for (var i = 0; i < bytes.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadDoubleLittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Fp16:
                for (var i = 0; i < bytes.Length; i += 2)
                {
                    writer.WriteNumberValue((float)BinaryPrimitives.ReadHalfLittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Bf16:
                for (var i = 0; i < bytes.Length; i += 2)
                {
                    writer.WriteNumberValue(OipDatatypes.FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(bytes[i..])));
                }

                break;
            case OipDatatype.Int8:
                foreach (var b in bytes)
                {
                    writer.WriteNumberValue(unchecked((sbyte)b));
                }

                break;
            case OipDatatype.Uint8:
                foreach (var b in bytes)
                {
                    writer.WriteNumberValue(b);
                }

                break;
            case OipDatatype.Int16:
                for (var i = 0; i < bytes.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt16LittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Uint16:
                for (var i = 0; i < bytes.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt16LittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Int32:
                for (var i = 0; i < bytes.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt32LittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Uint32:
                for (var i = 0; i < bytes.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt32LittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Int64:
                for (var i = 0; i < bytes.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt64LittleEndian(bytes[i..]));
                }

                break;
            case OipDatatype.Uint64:
                for (var i = 0; i < bytes.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt64LittleEndian(bytes[i..]));
                }

                break;
        }
    }
}
