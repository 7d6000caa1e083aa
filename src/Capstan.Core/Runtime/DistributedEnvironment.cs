using System.Globalization;

namespace Capstan.Core.Runtime;

/// <summary>
/// The PyTorchJob rendezvous environment, as Kubeflow's training operator (v1) sets it on each replica:
/// <c>MASTER_ADDR</c>, <c>MASTER_PORT</c>, <c>WORLD_SIZE</c> = replicas × nprocPerNode, <c>RANK</c> = the
/// replica's index (the master is 0), and for torchrun <c>PET_MASTER_ADDR</c>, <c>PET_MASTER_PORT</c>,
/// <c>PET_NNODES</c> = replicas, <c>PET_NPROC_PER_NODE</c>, <c>PET_NODE_RANK</c> = RANK. torchrun replaces
/// WORLD_SIZE and RANK with per-worker values for the workers it starts; a plain script run once per
/// replica with nprocPerNode 1 reads them directly.
/// </summary>
public static class DistributedEnvironment
{
    public const string MasterAddr = "MASTER_ADDR";
    public const string MasterPort = "MASTER_PORT";
    public const string WorldSize = "WORLD_SIZE";
    public const string Rank = "RANK";
    public const string PetMasterAddr = "PET_MASTER_ADDR";
    public const string PetMasterPort = "PET_MASTER_PORT";
    public const string PetNnodes = "PET_NNODES";
    public const string PetNprocPerNode = "PET_NPROC_PER_NODE";
    public const string PetNodeRank = "PET_NODE_RANK";

    /// <summary>Whether the gang is distributed and so gets the environment at all.</summary>
    public static bool Applies(int replicas, int nprocPerNode) => replicas > 1 || nprocPerNode > 1;

    public static IReadOnlyDictionary<string, string> For(int rank, int replicas, int nprocPerNode, string masterAddress, int masterPort)
    {
        var inv = CultureInfo.InvariantCulture;
        var port = masterPort.ToString(inv);
        var rankText = rank.ToString(inv);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [MasterAddr] = masterAddress,
            [MasterPort] = port,
            [WorldSize] = (replicas * nprocPerNode).ToString(inv),
            [Rank] = rankText,
            [PetMasterAddr] = masterAddress,
            [PetMasterPort] = port,
            [PetNnodes] = replicas.ToString(inv),
            [PetNprocPerNode] = nprocPerNode.ToString(inv),
            [PetNodeRank] = rankText,
        };
    }
}
