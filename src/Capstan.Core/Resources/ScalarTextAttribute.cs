namespace Capstan.Core.Resources;

/// <summary>
/// Marks a string (or list of strings) field that takes any YAML scalar as its text, as Katib's
/// <c>feasibleSpace</c> and settings do: <c>min: 0.01</c> and <c>min: "0.01"</c> mean the same.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ScalarTextAttribute : Attribute;
