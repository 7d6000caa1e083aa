using System.Globalization;
using System.Runtime.InteropServices;

namespace Capstan.Runtime.Local;

/// <summary>
/// Linux process facts the runtime relies on: each replica leads its own process group (started through
/// <c>setsid</c>), so signalling the group reaches every descendant that did not leave it; and a process is
/// identified across runtime restarts by its pid plus its start time (field 22 of <c>/proc/PID/stat</c>),
/// so a recycled pid is never mistaken for the replica.
/// </summary>
internal static partial class ProcessGroups
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>Sends <paramref name="signal"/> to every process in the group led by <paramref name="leader"/>; false when none is left.</summary>
    public static bool Signal(int leader, int signal) => leader > 1 && Kill(-leader, signal) == 0;

    /// <summary>Whether any process of the group still exists (zombies included, until reaped).</summary>
    public static bool HasMembers(int leader) => leader > 1 && Kill(-leader, 0) == 0;

    /// <summary>The process's start time in clock ticks since boot, or null when no such process runs (zombies count as gone).</summary>
    public static ulong? StartTicks(int pid)
    {
        var fields = ReadStatFields(pid);
        if (fields is null || fields.Length < 20 || fields[0] is "Z" or "X" or "x")
        {
            return null;
        }

        return ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }

    /// <summary>The fields of <c>/proc/PID/stat</c> after the command name: state, ppid, pgrp, ...; null when there is no such process.</summary>
    private static string[]? ReadStatFields(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // pid (comm) state ppid ... ; comm may hold spaces and ')', so count from the last ')'.
        var close = stat.LastIndexOf(')');
        return close < 0 || close + 2 > stat.Length ? null : stat[(close + 2)..].Split(' ');
    }

    /// <summary>Whether any process of the group led by <paramref name="leader"/> still runs (zombies do not count), by a scan of <c>/proc</c>.</summary>
    public static bool HasLiveMembers(int leader)
    {
        if (!HasMembers(leader))
        {
            return false;
        }

        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || ReadStatFields(pid) is not { } fields
                || fields.Length < 3
                || fields[0] is "Z" or "X" or "x")
            {
                continue;
            }

            if (int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var group) && group == leader)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether <paramref name="pid"/> is still the process that started at <paramref name="startTicks"/>.</summary>
    public static bool IsAlive(int pid, ulong startTicks) => StartTicks(pid) == startTicks;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
