using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;

namespace Capstan.Serving.Rest;

/// <summary>
/// Decodes an OIP v2 REST infer request with <see cref="Utf8JsonReader"/> straight into pooled,
/// typed little-endian buffers: no DOM. Tensor data may be flat or nested (row-major), and may
/// instead follow the JSON in the binary-data extension (<c>binary_data_size</c>).
/// </summary>
internal static class OipJsonRequestReader
{
    public static InferRequest Read(ReadOnlySpan<byte> json, ReadOnlySpan<byte> binary)
    {
        var request = new InferRequest();
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            var jsonBase = 0;
            ReadRequest(ref reader, json, ref jsonBase, request, binary);
            return request;
        }
        catch (JsonException ex)
        {
            request.Dispose();
            throw InferenceException.Invalid($"Malformed JSON: {ex.Message}");
        }
        catch
        {
            request.Dispose();
            throw;
        }
    }

    private static void ReadRequest(ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ref int jsonBase, InferRequest request, ReadOnlySpan<byte> binary)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid("Malformed JSON: the request body must be a JSON object.");
        }

        var sawInputs = false;
        var binaryOffset = 0;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                Next(ref reader);
                request.Id = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid("'id' must be a string.");
            }
            else if (reader.ValueTextEquals("inputs"u8))
            {
                sawInputs = true;
                Expect(ref reader, JsonTokenType.StartArray, "'inputs' must be an array.");
                while (Next(ref reader) == JsonTokenType.StartObject)
                {
                    request.Inputs.Add(ReadInput(ref reader, json, ref jsonBase, request.Inputs.Count, binary, ref binaryOffset));
                }
            }
            else if (reader.ValueTextEquals("outputs"u8))
            {
                Expect(ref reader, JsonTokenType.StartArray, "'outputs' must be an array.");
                while (Next(ref reader) == JsonTokenType.StartObject)
                {
                    request.Outputs.Add(ReadOutput(ref reader));
                }
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                Expect(ref reader, JsonTokenType.StartObject, "'parameters' must be an object.");
                while (Next(ref reader) == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("binary_data_output"u8))
                    {
                        Next(ref reader);
                        request.BinaryDataOutput = reader.TokenType == JsonTokenType.True;
                    }
                    else
                    {
                        Next(ref reader);
                        reader.Skip();
                    }
                }
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }

        if (!sawInputs || request.Inputs.Count == 0)
        {
            throw InferenceException.Invalid("The request has no 'inputs'.");
        }

        if (binaryOffset != binary.Length)
        {
            throw InferenceException.Invalid($"The binary section has {binary.Length} bytes; the inputs' binary_data_size add up to {binaryOffset}.");
        }
    }

    private static InferTensor ReadInput(ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ref int jsonBase, int index, ReadOnlySpan<byte> binary, ref int binaryOffset)
    {
        // Data decoded in the first pass is disposed if a later key turns out to be wrong.
        InferTensor? decoded = null;
        try
        {
            return ReadInputBody(ref reader, json, ref jsonBase, index, binary, ref binaryOffset, ref decoded);
        }
        catch
        {
            decoded?.Dispose();
            throw;
        }
    }

    private static InferTensor ReadInputBody(ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ref int jsonBase, int index, ReadOnlySpan<byte> binary, ref int binaryOffset, ref InferTensor? decoded)
    {
        string? name = null;
        long[]? shape = null;
        OipDatatype? datatype = null;
        long binarySize = -1;
        Utf8JsonReader data = default;
        var dataBase = 0;
        var hasData = false;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                Next(ref reader);
                name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid($"Input {index}: 'name' must be a string.");
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                Expect(ref reader, JsonTokenType.StartArray, $"Input {Label(name, index)}: 'shape' must be an array of integers.");
                var dims = new List<long>(4);
                while (Next(ref reader) == JsonTokenType.Number)
                {
                    if (!reader.TryGetInt64(out var dim) || dim < 0)
                    {
                        throw InferenceException.Invalid($"Input {Label(name, index)}: shape dimensions must be non-negative integers.");
                    }

                    dims.Add(dim);
                }

                if (reader.TokenType != JsonTokenType.EndArray)
                {
                    throw InferenceException.Invalid($"Input {Label(name, index)}: 'shape' must be an array of integers.");
                }

                shape = [.. dims];
            }
            else if (reader.ValueTextEquals("datatype"u8))
            {
                Next(ref reader);
                if (reader.TokenType != JsonTokenType.String
                    || !(reader.ValueIsEscaped ? OipDatatypes.TryParse(reader.GetString().AsSpan(), out var parsed) : OipDatatypes.TryParse(reader.ValueSpan, out parsed)))
                {
                    throw InferenceException.Invalid($"Input {Label(name, index)}: 'datatype' must be one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES.");
                }

                datatype = parsed;
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                Expect(ref reader, JsonTokenType.StartObject, $"Input {Label(name, index)}: 'parameters' must be an object.");
                while (Next(ref reader) == JsonTokenType.PropertyName)
                {
                    var isSize = reader.ValueTextEquals("binary_data_size"u8);
                    Next(ref reader);
                    if (isSize)
                    {
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out binarySize) || binarySize < 0)
                        {
                            throw InferenceException.Invalid($"Input {Label(name, index)}: 'binary_data_size' must be a non-negative integer.");
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("data"u8))
            {
                Next(ref reader);
                hasData = true;
                if (name is not null && shape is not null && datatype is { } known && decoded is null)
                {
                    // The usual key order: decode in this one pass.
                    decoded = ReadData(ref reader, json, ref jsonBase, name, known, shape, InferTensor.CountElements(shape));
                }
                else
                {
                    // Keep a copy of the reader here and decode once name, shape and datatype are known,
                    // whatever order the client wrote the keys in.
                    data = reader;
                    dataBase = jsonBase;
                    reader.Skip();
                }
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }

        if (name is null)
        {
            throw InferenceException.Invalid($"Input {index} has no 'name'.");
        }

        if (shape is null)
        {
            throw InferenceException.Invalid($"Input '{name}' has no 'shape'.");
        }

        if (datatype is not { } type)
        {
            throw InferenceException.Invalid($"Input '{name}' has no 'datatype'.");
        }

        var count = InferTensor.CountElements(shape);
        if (binarySize >= 0)
        {
            if (hasData)
            {
                throw InferenceException.Invalid($"Input '{name}' has both 'data' and 'binary_data_size'.");
            }

            if (binaryOffset + binarySize > binary.Length)
            {
                throw InferenceException.Invalid($"Input '{name}': binary_data_size {binarySize} runs past the {binary.Length} bytes after the JSON header.");
            }

            var slice = binary.Slice(binaryOffset, (int)binarySize);
            binaryOffset += (int)binarySize;
            if (type == OipDatatype.Bytes)
            {
                return new InferTensor(name, shape, ReadBinaryStrings(name, slice));
            }

            if (binarySize != count * type.ElementSize())
            {
                throw InferenceException.Invalid($"Input '{name}': binary_data_size is {binarySize} bytes; shape {LoadedModel.FormatShape(shape)} of {type.Name()} needs {count * type.ElementSize()}.");
            }

            return InferTensor.Copy(name, type, shape, slice);
        }

        if (!hasData)
        {
            throw InferenceException.Invalid($"Input '{name}' has no 'data'.");
        }

        if (decoded is not null && (decoded.Name != name || decoded.Datatype != type || !ReferenceEquals(decoded.Shape, shape)))
        {
            throw InferenceException.Invalid($"Input '{name}' repeats 'name', 'shape' or 'datatype' after its 'data'.");
        }

        return decoded ?? ReadData(ref data, json, ref dataBase, name, type, shape, count);
    }

    private static InferTensor ReadData(ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ref int jsonBase, string name, OipDatatype type, long[] shape, long count)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw InferenceException.Invalid($"Input '{name}': 'data' must be an array.");
        }

        if (type == OipDatatype.Bytes)
        {
            var strings = new List<string>((int)Math.Min(count, 1 << 16));
            ForEachElement(ref reader, name, count, (ref Utf8JsonReader r, long i) =>
                strings.Add(r.TokenType == JsonTokenType.String ? r.GetString()! : throw InferenceException.Invalid($"Input '{name}': element {i} is not a string (BYTES).")));
            return new InferTensor(name, shape, [.. strings]);
        }

        var size = type.ElementSize();
        var byteLength = checked((int)(count * size));
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(byteLength, 1));
        try
        {
            long written;
            if (FlatNumberArray.TryRead(json, jsonBase + (int)reader.TokenStartIndex, type, buffer.AsSpan(0, byteLength), count, out written, out var close))
            {
                // Resume the reader on the array's closing bracket, where the general path leaves it.
                reader = new Utf8JsonReader(json[close..], isFinalBlock: true, reader.CurrentState);
                reader.Read();
                jsonBase = close;
            }
            else
            {
                written = ReadNumbers(ref reader, name, type, buffer.AsSpan(0, byteLength), count);
            }

            if (written != count)
            {
                throw InferenceException.Invalid($"Input '{name}' has {written} elements; shape {LoadedModel.FormatShape(shape)} needs {count}.");
            }

            return new InferTensor(name, type, shape, buffer, byteLength);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private delegate void ElementAction(ref Utf8JsonReader reader, long index);

    private static void ForEachElement(ref Utf8JsonReader reader, string name, long count, ElementAction action)
    {
        var depth = 0;
        long index = 0;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartArray:
                    depth++;
                    break;
                case JsonTokenType.EndArray:
                    depth--;
                    break;
                default:
                    if (index >= count)
                    {
                        throw InferenceException.Invalid($"Input '{name}' has more than the {count} elements its shape needs.");
                    }

                    action(ref reader, index++);
                    break;
            }
        }
        while (depth > 0 && reader.Read());

        if (index != count)
        {
            throw InferenceException.Invalid($"Input '{name}' has {index} elements; its shape needs {count}.");
        }
    }

    private static long ReadNumbers(ref Utf8JsonReader reader, string name, OipDatatype type, Span<byte> destination, long count)
    {
        var depth = 0;
        long index = 0;
        var size = type.ElementSize();
        do
        {
            var token = reader.TokenType;
            if (token == JsonTokenType.StartArray)
            {
                depth++;
                continue;
            }

            if (token == JsonTokenType.EndArray)
            {
                depth--;
                continue;
            }

            if (index >= count)
            {
                throw InferenceException.Invalid($"Input '{name}' has more than the {count} elements its shape needs.");
            }

            var slot = destination.Slice((int)(index * size), size);
            if (!TryWriteElement(ref reader, type, slot))
            {
                throw InferenceException.Invalid($"Input '{name}': element {index} is not a valid {type.Name()} value.");
            }

            index++;
        }
        while (depth > 0 && reader.Read());

        return index;
    }

    private static bool TryWriteElement(ref Utf8JsonReader reader, OipDatatype type, Span<byte> slot)
    {
        if (type == OipDatatype.Bool)
        {
            if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
            {
                slot[0] = reader.TokenType == JsonTokenType.True ? (byte)1 : (byte)0;
                return true;
            }

            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var flag) && flag is 0 or 1)
            {
                slot[0] = (byte)flag;
                return true;
            }

            return false;
        }

        if (reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }

        switch (type)
        {
            case OipDatatype.Fp32 when JsonNumber.TryParseSingle(reader.ValueSpan, out var fast):
                BinaryPrimitives.WriteSingleLittleEndian(slot, fast);
                return true;
            case OipDatatype.Fp32 when reader.TryGetSingle(out var f):
                BinaryPrimitives.WriteSingleLittleEndian(slot, f);
                return true;
            case OipDatatype.Fp64 when JsonNumber.TryParseDouble(reader.ValueSpan, out var fastDouble):
                BinaryPrimitives.WriteDoubleLittleEndian(slot, fastDouble);
                return true;
            case OipDatatype.Fp64 when reader.TryGetDouble(out var d):
                BinaryPrimitives.WriteDoubleLittleEndian(slot, d);
                return true;
            case OipDatatype.Fp16 when reader.TryGetSingle(out var h):
                BinaryPrimitives.WriteHalfLittleEndian(slot, (Half)h);
                return true;
            case OipDatatype.Bf16 when reader.TryGetSingle(out var b):
                // Like FP16: the number's nearest float, then its nearest bfloat16.
                BinaryPrimitives.WriteUInt16LittleEndian(slot, OipDatatypes.ToBFloat16(b));
                return true;
            case OipDatatype.Int8 when reader.TryGetSByte(out var i8):
                slot[0] = unchecked((byte)i8);
                return true;
            case OipDatatype.Int16 when reader.TryGetInt16(out var i16):
                BinaryPrimitives.WriteInt16LittleEndian(slot, i16);
                return true;
            case OipDatatype.Int32 when reader.TryGetInt32(out var i32):
                BinaryPrimitives.WriteInt32LittleEndian(slot, i32);
                return true;
            case OipDatatype.Int64 when reader.TryGetInt64(out var i64):
                BinaryPrimitives.WriteInt64LittleEndian(slot, i64);
                return true;
            case OipDatatype.Uint8 when reader.TryGetByte(out var u8):
                slot[0] = u8;
                return true;
            case OipDatatype.Uint16 when reader.TryGetUInt16(out var u16):
                BinaryPrimitives.WriteUInt16LittleEndian(slot, u16);
                return true;
            case OipDatatype.Uint32 when reader.TryGetUInt32(out var u32):
                BinaryPrimitives.WriteUInt32LittleEndian(slot, u32);
                return true;
            case OipDatatype.Uint64 when reader.TryGetUInt64(out var u64):
                BinaryPrimitives.WriteUInt64LittleEndian(slot, u64);
                return true;
            default:
                return false;
        }
    }

    /// <summary>BYTES in the binary extension: each element is a 4-byte little-endian length, then its bytes.</summary>
    private static string[] ReadBinaryStrings(string name, ReadOnlySpan<byte> bytes)
    {
        var strings = new List<string>();
        while (bytes.Length > 0)
        {
            if (bytes.Length < 4)
            {
                throw InferenceException.Invalid($"Input '{name}': truncated BYTES element length in the binary data.");
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes);
            if (length < 0 || length > bytes.Length - 4)
            {
                throw InferenceException.Invalid($"Input '{name}': a BYTES element of {length} bytes runs past the binary data.");
            }

            strings.Add(Encoding.UTF8.GetString(bytes.Slice(4, length)));
            bytes = bytes[(4 + length)..];
        }

        return [.. strings];
    }

    private static RequestedOutput ReadOutput(ref Utf8JsonReader reader)
    {
        string? name = null;
        var binary = false;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                Next(ref reader);
                name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid("An output's 'name' must be a string.");
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                Expect(ref reader, JsonTokenType.StartObject, "An output's 'parameters' must be an object.");
                while (Next(ref reader) == JsonTokenType.PropertyName)
                {
                    var isBinary = reader.ValueTextEquals("binary_data"u8);
                    Next(ref reader);
                    if (isBinary)
                    {
                        binary = reader.TokenType == JsonTokenType.True;
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }

        return new RequestedOutput(name ?? throw InferenceException.Invalid("A requested output has no 'name'."), binary);
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw InferenceException.Invalid("Malformed JSON: the body ends early.");
        }

        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType token, string message)
    {
        if (Next(ref reader) != token)
        {
            throw InferenceException.Invalid(message);
        }
    }

    private static string Label(string? name, int index) => name is null ? index.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"'{name}'";
}
