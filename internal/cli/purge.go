package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// purgeReport is what berth purge did (or, with --dry-run, would do).
type purgeReport struct {
	DryRun           bool     `json:"dryRun"`
	TagsDeleted      []string `json:"tagsDeleted"`      // REPO:TAG
	ManifestsDeleted []string `json:"manifestsDeleted"` // REPO@DIGEST
	// Locked are what a lock kept (without --include-locked).
	Locked []string `json:"locked"`
}

// parseAgo reads acr purge's --ago: [N]d[Go duration], e.g. 30d, 2d3h6m, 1.5h.
func parseAgo(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.Atoi(s[:i])
		if err != nil || days < 0 || days > 150*365 {
			return 0, fmt.Errorf("--ago %q: the days before 'd' must be a whole number up to 150 years", s)
		}
		d, rest = time.Duration(days)*24*time.Hour, s[i+1:]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil || more < 0 {
			return 0, fmt.Errorf("--ago %q is not [N]d[duration], e.g. 30d, 2d3h6m, 1.5h", s)
		}
		d += more
	}
	return d, nil
}

// purgeFilter is one --filter REPO_REGEX:TAG_REGEX (the repository's anchored, the tag's not).
type purgeFilter struct {
	repo, tag *regexp.Regexp
}

func parseFilter(f string) (purgeFilter, error) {
	i := strings.LastIndex(f, ":")
	if i <= 0 {
		return purgeFilter{}, fmt.Errorf("--filter %q is not REPOSITORY_REGEX:TAG_REGEX", f)
	}
	if len(f) > 1024 {
		return purgeFilter{}, errors.New("--filter is longer than 1024 characters")
	}
	repo, err := regexp.Compile("^(?:" + f[:i] + ")$")
	if err != nil {
		return purgeFilter{}, fmt.Errorf("--filter %q: the repository regex: %w", f, err)
	}
	tag, err := regexp.Compile(f[i+1:])
	if err != nil {
		return purgeFilter{}, fmt.Errorf("--filter %q: the tag regex: %w", f, err)
	}
	return purgeFilter{repo: repo, tag: tag}, nil
}

func (a *app) purgeCmd() *cobra.Command {
	var ra registryAccess
	var filters []string
	var ago string
	var keep int
	var untagged, untaggedOnly, dryRun, includeLocked bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete old tags and untagged manifests by filter and age, as acr purge does",
		Long: `Delete the tags that match a filter and were last updated before --ago, and with --untagged
the manifests left without a tag, as acr purge (Azure/acr-cli) does. It runs as the signed-in
identity (or -u/-p) through the registry's /acr/v1/ API, so it deletes only what that identity
may delete. Locked tags and manifests (write- or delete-disabled) are kept and reported, unless
--include-locked, which unlocks them first. Manifests an image index names, and referrers
(signatures, SBOMs) of a manifest that is kept, are kept.

  berth purge -n myregistry --filter 'team/.*:^dev-' --ago 30d --untagged --dry-run
  berth purge -n myregistry --filter 'team/app:.*' --ago 0d --keep 5
  berth purge -n myregistry --untagged-only --ago 7d`,
		Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			switch {
			case untagged && untaggedOnly:
				return nil, errors.New("--untagged and --untagged-only cannot be used together")
			case !untaggedOnly && len(filters) == 0:
				return nil, errors.New("--filter is required when not using --untagged-only")
			case !untaggedOnly && ago == "":
				return nil, errors.New("--ago is required when not using --untagged-only")
			case keep < 0:
				return nil, errors.New("--keep must be 0 or more")
			}
			var fs []purgeFilter
			for _, f := range filters {
				pf, err := parseFilter(f)
				if err != nil {
					return nil, err
				}
				fs = append(fs, pf)
			}
			cutoff := time.Now().AddDate(100, 0, 0) // --untagged-only without --ago: any age
			if ago != "" {
				d, err := parseAgo(ago)
				if err != nil {
					return nil, err
				}
				cutoff = time.Now().Add(-d)
			}
			p := purger{dp: dp, dryRun: dryRun, includeLocked: includeLocked, cutoff: cutoff, keep: keep,
				report: purgeReport{DryRun: dryRun, TagsDeleted: []string{}, ManifestsDeleted: []string{}, Locked: []string{}}}
			repos, err := dp.Catalog(ctx, 0)
			if err != nil {
				return nil, err
			}
			for _, repo := range repos {
				var tagRes []*regexp.Regexp
				for _, f := range fs {
					if f.repo.MatchString(repo) {
						tagRes = append(tagRes, f.tag)
					}
				}
				if len(fs) > 0 && len(tagRes) == 0 {
					continue
				}
				if !untaggedOnly {
					if err := p.tags(ctx, repo, tagRes); err != nil {
						return nil, err
					}
				}
				if untagged || untaggedOnly {
					if err := p.untagged(ctx, repo, untaggedOnly); err != nil {
						return nil, err
					}
				}
			}
			verb := "deleted"
			if dryRun {
				verb = "to be deleted"
			}
			a.warn("Number of tags %s: %d; number of manifests %s: %d; kept by a lock: %d", verb, len(p.report.TagsDeleted), verb, len(p.report.ManifestsDeleted), len(p.report.Locked))
			return p.report, nil
		}),
	}
	ra.flags(cmd, "name", "n")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "REPOSITORY_REGEX:TAG_REGEX (repeatable; the repository regex matches the whole name)")
	cmd.Flags().StringVar(&ago, "ago", "", "delete what was last updated longer ago than this: [N]d[duration], e.g. 30d, 2d3h, 1.5h")
	cmd.Flags().IntVar(&keep, "keep", 0, "keep this many of the most recent tags that would be deleted (untagged manifests with --untagged-only)")
	cmd.Flags().BoolVar(&untagged, "untagged", false, "also delete the manifests left without a tag")
	cmd.Flags().BoolVar(&untaggedOnly, "untagged-only", false, "delete only untagged manifests")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be deleted, delete nothing")
	cmd.Flags().BoolVar(&includeLocked, "include-locked", false, "unlock locked tags and manifests, then delete them")
	return cmd
}

type purger struct {
	dp            *client.DataPlane
	dryRun        bool
	includeLocked bool
	cutoff        time.Time
	keep          int
	report        purgeReport
}

func lockedAttrs(c client.ChangeableAttributes) bool { return !c.WriteEnabled || !c.DeleteEnabled }

func older(ts string, cutoff time.Time) bool {
	t, err := time.Parse(time.RFC3339Nano, ts)
	return err == nil && t.Before(cutoff) // no readable time: kept, as acr purge does
}

// tags deletes the repository's tags matching one of res, last updated before the cutoff, but
// the keep most recent of them.
func (p *purger) tags(ctx context.Context, repo string, res []*regexp.Regexp) error {
	tags, err := p.dp.Tags(ctx, repo, "timedesc", 0)
	if err != nil {
		return err
	}
	kept := 0
	for _, t := range tags {
		match := false
		for _, re := range res {
			match = match || re.MatchString(t.Name)
		}
		if !match || !older(t.LastUpdateTime, p.cutoff) {
			continue
		}
		if kept < p.keep {
			kept++
			continue
		}
		name := repo + ":" + t.Name
		if lockedAttrs(t.ChangeableAttributes) {
			if !p.includeLocked {
				p.report.Locked = append(p.report.Locked, name)
				continue
			}
			if !p.dryRun {
				on := true
				if _, err := p.dp.UpdateTag(ctx, repo, t.Name, client.ChangeableAttributesUpdate{WriteEnabled: &on, DeleteEnabled: &on}); err != nil {
					return err
				}
			}
		}
		if !p.dryRun {
			if err := p.dp.Untag(ctx, repo, t.Name); err != nil && !client.IsStatus(err, 404) {
				return err
			}
		}
		p.report.TagsDeleted = append(p.report.TagsDeleted, name)
	}
	return nil
}

// untagged deletes the repository's manifests without a tag, last updated before the cutoff,
// keeping the children of tagged indexes and the referrers of kept manifests; with keepUntagged
// (--untagged-only), the keep most recent of them are kept too.
func (p *purger) untagged(ctx context.Context, repo string, keepUntagged bool) error {
	ms, err := p.dp.Manifests(ctx, repo, "timedesc", 0)
	if err != nil {
		return err
	}
	protected := map[string]bool{}
	var candidates []client.ManifestAttributes
	for _, m := range ms {
		if len(m.Tags) > 0 {
			protected[m.Digest] = true
			if strings.Contains(m.MediaType, "index") || strings.Contains(m.MediaType, "manifest.list") {
				children, err := p.dp.ManifestChildren(ctx, repo, m.Digest)
				if err != nil {
					return err
				}
				for _, c := range children {
					protected[c] = true
				}
			}
			continue
		}
		candidates = append(candidates, m)
	}
	kept := 0
	var doomed []client.ManifestAttributes
	for _, m := range candidates {
		if protected[m.Digest] || !older(m.LastUpdateTime, p.cutoff) {
			protected[m.Digest] = true
			continue
		}
		if keepUntagged && kept < p.keep {
			kept++
			protected[m.Digest] = true
			continue
		}
		doomed = append(doomed, m)
	}
	// A referrer goes only with its subject: what stays keeps its referrers.
	for changed := true; changed; {
		changed = false
		for _, m := range doomed {
			if m.Subject != "" && protected[m.Subject] && !protected[m.Digest] {
				protected[m.Digest], changed = true, true
			}
		}
	}
	for _, m := range doomed {
		if protected[m.Digest] {
			continue
		}
		name := repo + "@" + m.Digest
		if lockedAttrs(m.ChangeableAttributes) {
			if !p.includeLocked {
				p.report.Locked = append(p.report.Locked, name)
				continue
			}
			if !p.dryRun {
				on := true
				if _, err := p.dp.UpdateManifest(ctx, repo, m.Digest, client.ChangeableAttributesUpdate{WriteEnabled: &on, DeleteEnabled: &on}); err != nil {
					return err
				}
			}
		}
		if !p.dryRun {
			if err := p.dp.DeleteManifest(ctx, repo, m.Digest); err != nil && !client.IsStatus(err, 404) {
				return err
			}
		}
		p.report.ManifestsDeleted = append(p.report.ManifestsDeleted, name)
	}
	return nil
}
