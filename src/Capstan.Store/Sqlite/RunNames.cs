namespace Capstan.Store.Sqlite;

/// <summary>Readable run names such as <c>bold-falcon-417</c>, in the style of MLflow's generated names.</summary>
internal static class RunNames
{
    private static readonly string[] s_adjectives =
    [
        "able", "agile", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair",
        "fancy", "gentle", "glad", "grand", "happy", "honest", "keen", "kind", "lively", "lucky", "merry", "mighty",
        "nimble", "noble", "polite", "proud", "quick", "quiet", "rare", "rustic", "shy", "silver", "smart", "steady",
        "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
    ];

    private static readonly string[] s_nouns =
    [
        "ant", "badger", "bear", "bee", "bird", "cat", "colt", "crane", "deer", "dove", "eagle", "falcon", "finch",
        "fox", "frog", "gnu", "goat", "hare", "hawk", "heron", "horse", "jay", "koala", "lark", "lion", "lynx",
        "mole", "moth", "newt", "otter", "owl", "panda", "robin", "seal", "shark", "sloth", "snail", "swan", "tiger",
        "toad", "trout", "whale", "wolf", "wren", "yak",
    ];

    public static string Generate() =>
        $"{s_adjectives[Random.Shared.Next(s_adjectives.Length)]}-{s_nouns[Random.Shared.Next(s_nouns.Length)]}-{Random.Shared.Next(1000)}";
}
