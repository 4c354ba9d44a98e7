package activities

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Old data directories a point-in-time restore leaves: the ones kept aside
// (<data_dir>.before-pitr-<key>), what a rolled-back restore left (.pitr-failed-<key>) and an
// interrupted restore's partial copy (.pitr-partial-<time>). Only `pitr-restore --cleanup`
// removes them, after an approval.
var leftoverSuffix = regexp.MustCompile(`^\.(before-pitr|pitr-failed|pitr-partial)-[0-9]{8}T[0-9]{6}Z$`)

// IsPITRLeftover says whether path is one of those directories of dataDir: the one rule both
// the listing and the removal apply, so nothing else (the live data directory above all) is ever
// removed.
func IsPITRLeftover(dataDir, path string) bool {
	rest, ok := strings.CutPrefix(path, dataDir)
	return ok && dataDir != "" && leftoverSuffix.MatchString(rest)
}

// PITRLeftover is one directory on one member, with its size as du reports it.
type PITRLeftover struct {
	Member string `json:"member"`
	Path   string `json:"path"`
	Size   string `json:"size"`
}

// PITRCleanupInput lists or removes the leftovers on the members.
type PITRCleanupInput struct {
	Members []PITRMember `json:"members"`
	Spec    PITRSpec     `json:"spec"`
	// Remove: the paths to delete, as the listing found them (the approved plan).
	Remove []PITRLeftover `json:"remove,omitempty"`
}

// PITRCleanupList lists every member's leftovers, changing nothing.
func (a *Activities) PITRCleanupList(ctx context.Context, in PITRCleanupInput) ([]PITRLeftover, error) {
	var out []PITRLeftover
	for _, m := range in.Members {
		res, err := a.runStep(ctx, m.Node, "cleanup-list", in.Spec.pgEnv()+`for d in "$PGDATA".before-pitr-* "$PGDATA".pitr-failed-* "$PGDATA".pitr-partial-*; do
  [ -d "$d" ] && echo "note: $(du -sh "$d" | cut -f1) $d"
done
true
`, nil)
		if err != nil {
			return nil, err
		}
		for _, n := range res.Notes {
			size, path, ok := strings.Cut(n, " ")
			if ok && IsPITRLeftover(in.Spec.DataDir, path) {
				out = append(out, PITRLeftover{Member: m.Name, Path: path, Size: size})
			}
		}
	}
	return out, nil
}

// PITRCleanupMember removes the approved leftovers of one member (in.Members[0]); a path already
// gone is unchanged.
func (a *Activities) PITRCleanupMember(ctx context.Context, in PITRCleanupInput) (StepResult, error) {
	if len(in.Members) != 1 {
		return StepResult{}, temporal.NewNonRetryableApplicationError("cleanup runs on one member at a time", ErrConfig, nil)
	}
	m := in.Members[0]
	var vars []shellVar
	for _, l := range in.Remove {
		if l.Member != m.Name {
			continue
		}
		if !IsPITRLeftover(in.Spec.DataDir, l.Path) {
			return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s is not a directory a restore left: refusing to remove it", l.Path, m.Name), ErrConfig, nil)
		}
		vars = append(vars, shellVar{"p", l.Path})
	}
	var script strings.Builder
	script.WriteString(in.Spec.pgEnv())
	for _, v := range vars {
		script.WriteString(withInputs(`if [ -d "$p" ]; then rm -rf -- "$p"; changed "removed $p"; else note "$p is gone already"; fi
`, v))
	}
	return a.runStep(ctx, m.Node, "cleanup", script.String(), nil)
}
