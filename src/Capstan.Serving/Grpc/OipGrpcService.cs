using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Capstan.Serving.Grpc.V2;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;
using Capstan.Serving.Rest;
using Google.Protobuf;
using global::Grpc.Core;
using ProtoStatistics = Capstan.Serving.Grpc.V2.ModelStatistics;

namespace Capstan.Serving.Grpc;

/// <summary>
/// The Open Inference Protocol v2 over gRPC (<c>inference.GRPCInferenceService</c>). Answers in raw
/// output contents when the request came raw (as Triton's clients send), typed contents otherwise.
/// </summary>
public sealed class OipGrpcService(InferenceService service) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = true });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelReadyResponse { Ready = service.IsReady(request.Name, request.Version) });

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var response = new ServerMetadataResponse { Name = OipRestApi.ServerName, Version = typeof(OipGrpcService).Assembly.GetName().Version?.ToString() ?? "0" };
        response.Extensions.AddRange(OipRestApi.Extensions);
        return Task.FromResult(response);
    }

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            var metadata = service.GetMetadata(request.Name, request.Version);
            var response = new ModelMetadataResponse { Name = metadata.Name, Platform = Models.ModelMetadata.Platform };
            response.Versions.AddRange(service.Repository.VersionsOf(metadata.Name));
            response.Inputs.AddRange(metadata.Inputs.Select(ToProto));
            response.Outputs.AddRange(metadata.Outputs.Select(ToProto));
            response.Parameters["version"] = new InferParameter { StringParam = metadata.Version };
            response.Parameters["execution_provider"] = new InferParameter { StringParam = metadata.ExecutionProvider };
            return Task.FromResult(response);
        }
        catch (InferenceException ex)
        {
            throw ToRpcException(ex);
        }
    }

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var raw = request.RawInputContents.Count > 0;
        try
        {
            using var decoded = Decode(request);
            using var response = await service.InferAsync(request.ModelName, request.ModelVersion, decoded, context.CancellationToken).ConfigureAwait(false);
            return Encode(response, raw);
        }
        catch (InferenceException ex)
        {
            throw ToRpcException(ex);
        }
    }

    /// <summary>Triton's statistics extension: the same counts as <c>GET /v2/models/.../stats</c>, for tritonclient's gRPC client.</summary>
    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        IReadOnlyList<(ModelMetadata Metadata, Models.ModelStatistics Statistics)> found;
        try
        {
            found = service.Repository.StatisticsOf(request.Name, request.Version);
        }
        catch (InferenceException ex)
        {
            throw ToRpcException(ex);
        }

        var response = new ModelStatisticsResponse();
        foreach (var (metadata, statistics) in found)
        {
            var stats = new ProtoStatistics
            {
                Name = metadata.Name,
                Version = metadata.Version,
                LastInference = (ulong)statistics.LastInference,
                InferenceCount = (ulong)statistics.InferenceCount,
                ExecutionCount = (ulong)statistics.ExecutionCount,
                InferenceStats = new InferStatistics
                {
                    Success = ToProto(statistics.Success),
                    Fail = ToProto(statistics.Fail),
                    Queue = ToProto(statistics.Queue),
                    ComputeInput = ToProto(statistics.ComputeInput),
                    ComputeInfer = ToProto(statistics.ComputeInfer),
                    ComputeOutput = ToProto(statistics.ComputeOutput),
                    CacheHit = new StatisticDuration(),
                    CacheMiss = new StatisticDuration(),
                },
            };
            stats.BatchStats.AddRange(statistics.Batches.Select(b => new InferBatchStatistics
            {
                BatchSize = (ulong)b.BatchSize,
                ComputeInput = ToProto(b.ComputeInput),
                ComputeInfer = ToProto(b.ComputeInfer),
                ComputeOutput = ToProto(b.ComputeOutput),
            }));
            response.ModelStats.Add(stats);
        }

        return Task.FromResult(response);
    }

    private static StatisticDuration ToProto(DurationStat stat) => new() { Count = (ulong)stat.Count, Ns = (ulong)stat.Nanoseconds };

    private static ModelMetadataResponse.Types.TensorMetadata ToProto(TensorMetadata tensor)
    {
        var proto = new ModelMetadataResponse.Types.TensorMetadata { Name = tensor.Name, Datatype = tensor.Datatype.Name() };
        proto.Shape.AddRange(tensor.Shape);
        return proto;
    }

    private static RpcException ToRpcException(InferenceException ex) => new(new Status(
        ex.Kind switch
        {
            InferenceErrorKind.NotFound => StatusCode.NotFound,
            InferenceErrorKind.QueueFull => StatusCode.ResourceExhausted,
            InferenceErrorKind.Timeout => StatusCode.DeadlineExceeded,
            InferenceErrorKind.Unavailable => StatusCode.Unavailable,
            _ => StatusCode.InvalidArgument,
        },
        ex.Message));

    private static InferRequest Decode(ModelInferRequest proto)
    {
        var request = new InferRequest { Id = proto.Id.Length > 0 ? proto.Id : null };
        try
        {
            if (proto.RawInputContents.Count > 0 && proto.RawInputContents.Count != proto.Inputs.Count)
            {
                throw InferenceException.Invalid($"raw_input_contents has {proto.RawInputContents.Count} entries for {proto.Inputs.Count} inputs.");
            }

            for (var i = 0; i < proto.Inputs.Count; i++)
            {
                var input = proto.Inputs[i];
                if (!OipDatatypes.TryParse(input.Datatype.AsSpan(), out var datatype))
                {
                    throw InferenceException.Invalid($"Input '{input.Name}' has unknown datatype '{input.Datatype}'.");
                }

                var shape = input.Shape.ToArray();
                if (shape.Any(d => d < 0))
                {
                    throw InferenceException.Invalid($"Input '{input.Name}': shape dimensions must be non-negative.");
                }

                if (proto.RawInputContents.Count > 0)
                {
                    var bytes = proto.RawInputContents[i].Span;
                    request.Inputs.Add(datatype == OipDatatype.Bytes
                        ? new InferTensor(input.Name, shape, ReadRawStrings(input.Name, bytes))
                        : InferTensor.Copy(input.Name, datatype, shape, bytes));
                }
                else
                {
                    request.Inputs.Add(FromContents(input.Name, datatype, shape, input.Contents ?? new InferTensorContents()));
                }
            }

            foreach (var output in proto.Outputs)
            {
                request.Outputs.Add(new RequestedOutput(output.Name, Binary: false));
            }

            return request;
        }
        catch
        {
            request.Dispose();
            throw;
        }
    }

    private static InferTensor FromContents(string name, OipDatatype datatype, long[] shape, InferTensorContents contents)
    {
        switch (datatype)
        {
            case OipDatatype.Bytes:
                return new InferTensor(name, shape, [.. contents.BytesContents.Select(b => b.ToStringUtf8())]);
            case OipDatatype.Fp16 or OipDatatype.Bf16:
                throw InferenceException.Invalid($"Input '{name}': {datatype.Name()} has no typed contents field; send it in raw_input_contents.");
        }

        var size = datatype.ElementSize();
        var count = datatype switch
        {
            OipDatatype.Bool => contents.BoolContents.Count,
            OipDatatype.Int8 or OipDatatype.Int16 or OipDatatype.Int32 => contents.IntContents.Count,
            OipDatatype.Int64 => contents.Int64Contents.Count,
            OipDatatype.Uint8 or OipDatatype.Uint16 or OipDatatype.Uint32 => contents.UintContents.Count,
            OipDatatype.Uint64 => contents.Uint64Contents.Count,
            OipDatatype.Fp32 => contents.Fp32Contents.Count,
            _ => contents.Fp64Contents.Count,
        };
        var bytes = new byte[count * size];
        var span = bytes.AsSpan();
        for (var i = 0; i < count; i++)
        {
            var slot = span.Slice(i * size, size);
            switch (datatype)
            {
                case OipDatatype.Bool: slot[0] = contents.BoolContents[i] ? (byte)1 : (byte)0; break;
                case OipDatatype.Int8: slot[0] = unchecked((byte)(sbyte)contents.IntContents[i]); break;
                case OipDatatype.Int16: BinaryPrimitives.WriteInt16LittleEndian(slot, (short)contents.IntContents[i]); break;
                case OipDatatype.Int32: BinaryPrimitives.WriteInt32LittleEndian(slot, contents.IntContents[i]); break;
                case OipDatatype.Int64: BinaryPrimitives.WriteInt64LittleEndian(slot, contents.Int64Contents[i]); break;
                case OipDatatype.Uint8: slot[0] = (byte)contents.UintContents[i]; break;
                case OipDatatype.Uint16: BinaryPrimitives.WriteUInt16LittleEndian(slot, (ushort)contents.UintContents[i]); break;
                case OipDatatype.Uint32: BinaryPrimitives.WriteUInt32LittleEndian(slot, contents.UintContents[i]); break;
                case OipDatatype.Uint64: BinaryPrimitives.WriteUInt64LittleEndian(slot, contents.Uint64Contents[i]); break;
                case OipDatatype.Fp32: BinaryPrimitives.WriteSingleLittleEndian(slot, contents.Fp32Contents[i]); break;
                default: BinaryPrimitives.WriteDoubleLittleEndian(slot, contents.Fp64Contents[i]); break;
            }
        }

        return InferTensor.Copy(name, datatype, shape, bytes);
    }

    private static string[] ReadRawStrings(string name, ReadOnlySpan<byte> bytes)
    {
        var strings = new List<string>();
        while (bytes.Length > 0)
        {
            var length = bytes.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(bytes) : -1;
            if (length < 0 || length > bytes.Length - 4)
            {
                throw InferenceException.Invalid($"Input '{name}': malformed BYTES element in raw_input_contents.");
            }

            strings.Add(Encoding.UTF8.GetString(bytes.Slice(4, length)));
            bytes = bytes[(4 + length)..];
        }

        return [.. strings];
    }

    private static ModelInferResponse Encode(InferResponse response, bool raw)
    {
        var proto = new ModelInferResponse { ModelName = response.ModelName, ModelVersion = response.ModelVersion, Id = response.Id ?? string.Empty };
        foreach (var output in response.Outputs)
        {
            var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = output.Name, Datatype = output.Datatype.Name() };
            tensor.Shape.AddRange(output.Shape);
            if (raw || output.Datatype is OipDatatype.Fp16 or OipDatatype.Bf16)
            {
                var writer = new PooledBufferWriter();
                OipJsonResponseWriter.WriteBinary(writer, output);
                proto.RawOutputContents.Add(ByteString.CopyFrom(writer.Span));
                writer.Dispose();
            }
            else
            {
                tensor.Contents = ToContents(output);
            }

            proto.Outputs.Add(tensor);
        }

        return proto;
    }

    private static InferTensorContents ToContents(InferTensor tensor)
    {
        var contents = new InferTensorContents();
        var bytes = tensor.Bytes;
        switch (tensor.Datatype)
        {
            case OipDatatype.Bytes: contents.BytesContents.AddRange(tensor.Strings!.Select(ByteString.CopyFromUtf8)); break;
            case OipDatatype.Bool: foreach (var b in bytes) { contents.BoolContents.Add(b != 0); } break;
            case OipDatatype.Int8: foreach (var b in bytes) { contents.IntContents.Add(unchecked((sbyte)b)); } break;
            case OipDatatype.Uint8: foreach (var b in bytes) { contents.UintContents.Add(b); } break;
            case OipDatatype.Int16: foreach (var v in MemoryMarshal.Cast<byte, short>(bytes)) { contents.IntContents.Add(v); } break;
            case OipDatatype.Uint16: foreach (var v in MemoryMarshal.Cast<byte, ushort>(bytes)) { contents.UintContents.Add(v); } break;
            case OipDatatype.Int32: contents.IntContents.AddRange(MemoryMarshal.Cast<byte, int>(bytes).ToArray()); break;
            case OipDatatype.Uint32: contents.UintContents.AddRange(MemoryMarshal.Cast<byte, uint>(bytes).ToArray()); break;
            case OipDatatype.Int64: contents.Int64Contents.AddRange(MemoryMarshal.Cast<byte, long>(bytes).ToArray()); break;
            case OipDatatype.Uint64: contents.Uint64Contents.AddRange(MemoryMarshal.Cast<byte, ulong>(bytes).ToArray()); break;
            case OipDatatype.Fp32: contents.Fp32Contents.AddRange(MemoryMarshal.Cast<byte, float>(bytes).ToArray()); break;
            case OipDatatype.Fp64: contents.Fp64Contents.AddRange(MemoryMarshal.Cast<byte, double>(bytes).ToArray()); break;
        }

        return contents;
    }
}
