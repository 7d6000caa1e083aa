using Capstan.Core;
using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class ParamSubstitutionTests
{
    private static readonly Dictionary<string, string> s_params = new() { ["lr"] = "0.01", ["batch-size"] = "64" };

    [Fact]
    public void Expand_Args_ReplacesEveryPlaceholder()
    {
        var args = ParamSubstitution.Expand(["--lr=${params.lr}", "--batch", "${params.batch-size}", "${params.lr}/${params.lr}"], ParamSubstitution.Params, s_params);

        Assert.Equal(["--lr=0.01", "--batch", "64", "0.01/0.01"], args);
    }

    [Fact]
    public void Expand_UnknownName_ThrowsNamingItAndTheClosestParam()
    {
        var exception = Assert.Throws<CapstanException>(() => ParamSubstitution.Expand("--lr=${params.lt}", ParamSubstitution.Params, s_params));

        Assert.Equal("${params.lt} names no parameter 'lt' (did you mean 'lr'?)", exception.Message);
        Assert.Equal(ErrorCode.InvalidParameterValue, exception.Code);
    }

    [Theory]
    [InlineData("cost: $${params.lr}", "cost: ${params.lr}")]
    [InlineData("${params.lr", "${params.lr")]
    [InlineData("${other.lr} $HOME ${HOME}", "${other.lr} $HOME ${HOME}")]
    public void Expand_TextThatIsNoPlaceholder_IsLeftAsWritten(string text, string expected)
    {
        Assert.Equal(expected, ParamSubstitution.Expand(text, ParamSubstitution.Params, s_params));
    }

    [Fact]
    public void Expand_TrialParameters_UsesTheSameRuleWithItsOwnPrefix()
    {
        var trial = new Dictionary<string, string> { ["learningRate"] = "0.3" };

        var text = ParamSubstitution.Expand("--lr=${trialParameters.learningRate} ${params.lr}", ParamSubstitution.TrialParameters, trial);

        Assert.Equal("--lr=0.3 ${params.lr}", text);
        Assert.Throws<CapstanException>(() => ParamSubstitution.Expand("${trialParameters.lr}", ParamSubstitution.TrialParameters, trial));
    }

    [Fact]
    public void Names_Text_ListsReferencedNamesInOrder()
    {
        Assert.Equal(["b", "a", "b"], ParamSubstitution.Names("${params.b}-${params.a}:${params.b}", ParamSubstitution.Params));
    }

    [Fact]
    public void Environment_Params_ExportsPrefixedUpperCaseNamesAndValidRawNames()
    {
        var environment = ParamSubstitution.Environment(s_params);

        Assert.Equal(
            new Dictionary<string, string> { ["CAPSTAN_PARAM_LR"] = "0.01", ["lr"] = "0.01", ["CAPSTAN_PARAM_BATCH_SIZE"] = "64" },
            environment);
    }

    [Fact]
    public void Read_ParamsWhoseVariablesCollide_ReportsBoth()
    {
        var yaml = "apiVersion: capstan.dev/v1alpha1\nkind: TrainJob\nmetadata: {name: a}\nspec:\n  command: [x]\n  params: {batch-size: 1, batch_size: 2}\n";

        var error = Assert.Single(ResourceLoader.Read(yaml, "job.yaml").Errors);

        Assert.Equal("job.yaml:6:27: spec.params.batch_size: 'batch_size' and 'batch-size' both become CAPSTAN_PARAM_BATCH_SIZE", error.ToString());
    }
}
