namespace Capstan.Training.Tabular;

/// <summary>The data or the options cannot be trained on; the message names the file and column.</summary>
public sealed class TrainingDataException(string message) : Exception(message);
