using System.Runtime.CompilerServices;

namespace Capstan.Serving.Tests;

internal static class ThreadPoolWarmup
{
    /// <summary>
    /// The test classes run in parallel in one process and host in-process servers whose model runs hold a pool thread each;
    /// on a 2-core machine the pool's slow thread injection would then serialise requests a test sends together (a queue-full
    /// test would see no queue). A real <c>capstan serve</c> process hosts one server, not a dozen.
    /// </summary>
    [ModuleInitializer]
    internal static void RaiseMinimumThreads()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
