using System.Net;

namespace Capstan.Client;

/// <summary>
/// Streams a caller's stream as a request body without taking ownership of it: unlike
/// <see cref="StreamContent"/>, disposing the request leaves the caller's stream open.
/// </summary>
internal sealed class UploadContent(Stream source, long? length) : HttpContent
{
    private readonly long? _length = length;

    private const int BufferSize = 81_920;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        source.CopyToAsync(stream, BufferSize);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        source.CopyToAsync(stream, BufferSize, cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = _length ?? 0;
        return _length is not null;
    }
}
