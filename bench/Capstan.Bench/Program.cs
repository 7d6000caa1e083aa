using Capstan.Bench;

// Benchmarks print their figures side by side with a baseline measured in the same run,
// so the ratios hold on a noisy machine.
// Usage: dotnet run -c Release --project bench/Capstan.Bench [-- [serving|dashboard|controlplane|trials|tuning] [--quick]]
// With no suite named, the tracking benchmark runs.
var quick = args.Contains("--quick");

// The in-process server logs start-up at Information; keep the figures readable.
Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Warning");
var report = new Report();
if (args.Contains("serving"))
{
    await ServingBenchmark.RunAsync(report, quick);
}
else if (args.Contains("dashboard"))
{
    await DashboardBenchmark.RunAsync(report, quick);
}
else if (args.Contains("controlplane"))
{
    await ControlPlaneBenchmark.RunAsync(report, quick);
}
else if (args.Contains("trials"))
{
    await TrialOverheadBenchmark.RunAsync(report, quick);
}
else if (args.Contains("tuning"))
{
    await TuningBenchmark.RunAsync(report, quick);
}
else
{
    await TrackingBenchmark.RunAsync(report, quick);
}

report.Print();
return report.AllTargetsMet ? 0 : 1;
