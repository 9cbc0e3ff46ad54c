package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/golden"
)

// conditionCorpus is every shape of the condition language worth pinning down: each operator,
// case, nesting and limit, and each way to get one wrong.
var conditionCorpus = []string{
	// valid
	nameAttr + " StringEquals 'team-a/x'",
	nameAttr + " stringequals 'team-a/x'",
	nameAttr + " StringEqualsIgnoreCase 'TEAM-A/X'",
	nameAttr + " StringStartsWith 'team-a/'",
	nameAttr + " StringStartsWith 'team-a'",
	nameAttr + " StringStartsWithIgnoreCase 'TEAM-A'",
	nameAttr + " StringStartsWithIgnoreCase 'team-a/x-longer-than-the-name'",
	nameAttr + " StringLike 'team-?/*'",
	nameAttr + " StringLike '*/x'",
	nameAttr + " StringLike ''",
	"@request[microsoft.containerregistry/registries/repositories:NAME] StringEquals 'a'",
	"@Request[ " + RepositoryNameAttribute + " ] StringEquals 'a'",
	"ActionMatches{'" + DataContentRead + "'}",
	"ActionMatches{'" + strings.ToUpper(DataContentWrite) + "'}",
	"ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/*'}",
	"ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/*'}",
	"ActionMatches{'Microsoft.ContainerRegistry/*'}",
	"ActionMatches{'*'}",
	"ActionMatches{'" + DataCatalogRead + "'}",
	"ActionMatches{'" + DataMetadataDelete + "'}",
	"ActionMatches{'" + DataContentRead + "*'}", // a prefix as long as the action
	"ActionMatches{'" + strings.ToUpper(DataContentRead[:20]) + "*'}",
	"!ActionMatches{'" + DataContentRead + "'}",
	"NOT NOT ActionMatches{'" + DataContentRead + "'}",
	"not ActionMatches{'" + DataContentRead + "'} or " + nameAttr + " StringEquals 'team-a/x'",
	"ActionMatches{'" + DataContentRead + "'} && " + nameAttr + " StringStartsWith 'team-a/'",
	"ActionMatches{'" + DataContentRead + "'} || " + nameAttr + " StringStartsWith 'team-a/'",
	"ActionMatches{'" + DataContentRead + "'} AND " + nameAttr + " StringLike 'team-b/*' OR " + nameAttr + " StringEquals 'team-a/x'",
	"(ActionMatches{'" + DataContentRead + "'} OR ActionMatches{'" + DataContentWrite + "'}) AND " + nameAttr + " StringStartsWith 'team-a/'",
	"(\n\t" + nameAttr + " StringEquals 'team-a/x'\r\n)",
	strings.Repeat("(", 32) + "ActionMatches{'" + DataContentRead + "'}" + strings.Repeat(")", 32),
	strings.Repeat("!", 32) + "ActionMatches{'" + DataContentRead + "'}",
	// invalid
	"z", "Z9", "0a", "a_b:c.d", "az09AZ", "9", "{", "}", "@", "~", "`",
	"",
	"   ",
	"(",
	")",
	"#",
	"é",
	"&",
	"|",
	"& ActionMatches{'" + DataContentRead + "'}",
	"ActionMatches{'" + DataContentRead + "'} & ActionMatches{'" + DataContentRead + "'}",
	"ActionMatches{'" + DataContentRead + "'} | ActionMatches{'" + DataContentRead + "'}",
	"ActionMatches",
	"ActionMatches{",
	"ActionMatches{}",
	"ActionMatches{'" + DataContentRead + "'",
	"ActionMatches{'" + DataContentRead + "')",
	"ActionMatches{" + DataContentRead + "}",
	"ActionMatches{'Microsoft.Storage/*'}",
	"ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/raed'}",
	"ActionMatches{'unterminated}",
	"@Request",
	"@Request[" + RepositoryNameAttribute,
	"@Resource[" + RepositoryNameAttribute + "] StringEquals 'a'",
	"@Request" + RepositoryNameAttribute + "] StringEquals 'a'",
	"@Request[Microsoft.ContainerRegistry/registries/tags:name] StringEquals 'a'",
	nameAttr,
	nameAttr + " StringContains 'a'",
	nameAttr + " 'a'",
	nameAttr + " StringEquals",
	nameAttr + " StringEquals a",
	nameAttr + " StringEquals 'a' 'b'",
	nameAttr + " StringEquals 'a' AND",
	nameAttr + " StringEquals 'a' OR OR",
	"NOT",
	"!",
	"(" + nameAttr + " StringEquals 'a'",
	"(\n  " + nameAttr + " StringEquals 'a'\n  AND x",
	"a\nb\n  #",
	strings.Repeat("(", 33) + "ActionMatches{'" + DataContentRead + "'}" + strings.Repeat(")", 33),
	strings.Repeat("!", 33) + "ActionMatches{'" + DataContentRead + "'}",
	strings.Repeat(" ", maxConditionBytes-len(nameAttr+" StringEquals 'a'")) + nameAttr + " StringEquals 'a'",
	strings.Repeat(" ", maxConditionBytes-len(nameAttr+" StringEquals 'a'")+1) + nameAttr + " StringEquals 'a'",
	nameAttr + " StringEquals '\xff'",
}

var conditionProbes = []struct{ action, repo string }{
	{DataContentRead, "team-a/x"}, {DataContentWrite, "team-a/x"}, {DataContentRead, "team-b/x"}, {DataMetadataRead, "team-a/x"},
	{DataCatalogRead, ""}, {DataContentRead, "TEAM-A"}, {DataContentRead, "team-a"}, {DataContentDelete, "team-ab/x"},
}

// TestConditionGolden parses conditionCorpus and compares, for each text, the whole error or the
// value on every probe, with testdata/conditions.golden (-update rewrites it).
func TestConditionGolden(t *testing.T) {
	var b strings.Builder
	for _, text := range conditionCorpus {
		shown := text
		if len(shown) > 120 {
			shown = fmt.Sprintf("%s… (%d bytes)", shown[:60], len(text))
		}
		fmt.Fprintf(&b, "%q\n", shown)
		c, err := ParseCondition(text, ConditionVersion)
		if err != nil {
			fmt.Fprintf(&b, "  error: %v\n", err)
			continue
		}
		for _, pr := range conditionProbes {
			fmt.Fprintf(&b, "  %v %s %q\n", c.Eval(pr.action, pr.repo), strings.TrimPrefix(pr.action, "Microsoft.ContainerRegistry/registries/"), pr.repo)
		}
	}
	golden.Compare(t, "testdata/conditions.golden", b.String())
}
