package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// Attributes are ACR's changeable attributes ("locks") of a repository, a tag or a manifest.
type Attributes struct {
	WriteEnabled, DeleteEnabled, ReadEnabled, ListEnabled bool
}

// Unlocked is every attribute enabled: what new content has.
var Unlocked = Attributes{WriteEnabled: true, DeleteEnabled: true, ReadEnabled: true, ListEnabled: true}

const attributeColumns = `write_enabled, delete_enabled, read_enabled, list_enabled`

func attrs(w, d, r, l int64) Attributes {
	return Attributes{WriteEnabled: w != 0, DeleteEnabled: d != 0, ReadEnabled: r != 0, ListEnabled: l != 0}
}

// RepositoryInfo is what az acr repository show prints of a repository.
type RepositoryInfo struct {
	Name          string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ManifestCount int64
	TagCount      int64
	Attributes
}

// TagInfo is one tag with its times and attributes.
type TagInfo struct {
	Name      string
	Digest    oci.Digest
	CreatedAt time.Time
	UpdatedAt time.Time
	Attributes
}

// ManifestInfo is one manifest with its size (with the blobs it references), tags and
// attributes.
type ManifestInfo struct {
	Manifest
	ImageSize int64
	UpdatedAt time.Time
	Tags      []string
	Attributes
}

// Order is how a listing is sorted: by name (tags) or digest (manifests), or by last update.
type Order int

// The orders of listings.
const (
	ByName Order = iota
	NewestFirst
	OldestFirst
)

// RepositoryInfo describes a repository that holds at least one manifest, or ErrNotFound.
func (s *Store) RepositoryInfo(ctx context.Context, registryID int64, repo string) (RepositoryInfo, error) {
	info := RepositoryInfo{Name: repo}
	var created, updated, w, d, r, l, lastManifest, lastTag int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, created_at, updated_at, `+attributeColumns+`,
		(SELECT COUNT(*) FROM manifests m WHERE m.repository_id = repositories.id),
		(SELECT COUNT(*) FROM tags t WHERE t.repository_id = repositories.id),
		COALESCE((SELECT MAX(m.created_at) FROM manifests m WHERE m.repository_id = repositories.id), 0),
		COALESCE((SELECT MAX(t.updated_at) FROM tags t WHERE t.repository_id = repositories.id), 0)
		FROM repositories WHERE registry_id = ? AND name = ?`), registryID, repo).
		Scan(new(int64), &created, &updated, &w, &d, &r, &l, &info.ManifestCount, &info.TagCount, &lastManifest, &lastTag)
	if errors.Is(err, sql.ErrNoRows) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, fmt.Errorf("store: repository %s: %w", repo, err)
	}
	if info.ManifestCount == 0 {
		return info, ErrNotFound // emptied: gone from the catalog too
	}
	info.CreatedAt = time.UnixMilli(created)
	info.UpdatedAt = time.UnixMilli(max(created, updated, lastManifest, lastTag))
	info.Attributes = attrs(w, d, r, l)
	return info, nil
}

// listPage is a listing of a repository's rows (tags or manifests) by their key or by a time.
type listPage struct {
	table, alias, key, time string
	repoID                  int64
}

// pageAfter returns the WHERE and ORDER BY of a page of listed (list-enabled) rows after last
// in order, and their arguments: by key, or by time then key (last's time is looked up; a last
// that is gone starts from the beginning).
func (s *Store) pageAfter(ctx context.Context, p listPage, order Order, last string) (where, orderBy string, args []any) {
	a := p.alias + "."
	where, args = a+`repository_id = ? AND `+a+`list_enabled = 1`, []any{p.repoID}
	if order != NewestFirst && order != OldestFirst {
		return where + ` AND ` + a + p.key + ` > ?`, a + p.key, append(args, last)
	}
	cmp, dir := "<", "DESC"
	if order == OldestFirst {
		cmp, dir = ">", "ASC"
	}
	if last != "" {
		var at int64
		if err := s.r.QueryRowContext(ctx, s.q(`SELECT `+p.time+` FROM `+p.table+` WHERE repository_id = ? AND `+p.key+` = ?`), p.repoID, last).Scan(&at); err == nil {
			where += ` AND (` + a + p.time + ` ` + cmp + ` ? OR (` + a + p.time + ` = ? AND ` + a + p.key + ` ` + cmp + ` ?))`
			args = append(args, at, at, last)
		}
	}
	return where, a + p.time + ` ` + dir + `, ` + a + p.key + ` ` + dir, args
}

// TagInfos lists up to n tags of the repository after last (a tag name) in order; more reports
// whether others follow. ErrNotFound for an unknown repository.
func (s *Store) TagInfos(ctx context.Context, registryID int64, repo string, order Order, last string, n int) (list []TagInfo, more bool, err error) {
	id, err := s.repoID(ctx, s.r, registryID, repo)
	if err != nil {
		return nil, false, err
	}
	where, orderBy, args := s.pageAfter(ctx, listPage{table: "tags", alias: "t", key: "name", time: "updated_at", repoID: id}, order, last)
	args = append(args, n+1)
	list, err = queryAll(ctx, s.r, s.q(`SELECT t.name, t.digest, t.created_at, t.updated_at, t.write_enabled, t.delete_enabled, t.read_enabled, t.list_enabled
		FROM tags t WHERE `+where+` ORDER BY `+orderBy+` LIMIT ?`), args, scanTagInfo)
	if err != nil {
		return nil, false, fmt.Errorf("store: tags of %s: %w", repo, err)
	}
	list, more = page(list, n)
	return list, more, nil
}

func scanTagInfo(sc scanner) (TagInfo, error) {
	var t TagInfo
	var d string
	var created, updated, w, del, r, l int64
	if err := sc.Scan(&t.Name, &d, &created, &updated, &w, &del, &r, &l); err != nil {
		return t, err
	}
	if created == 0 { // tagged before berth kept the time
		created = updated
	}
	t.Digest, t.CreatedAt, t.UpdatedAt, t.Attributes = oci.Digest(d), time.UnixMilli(created), time.UnixMilli(updated), attrs(w, del, r, l)
	return t, nil
}

// TagInfo describes one tag, or ErrNotFound.
func (s *Store) TagInfo(ctx context.Context, registryID int64, repo, tag string) (TagInfo, error) {
	t, err := scanTagInfo(s.r.QueryRowContext(ctx, s.q(`SELECT t.name, t.digest, t.created_at, t.updated_at, t.write_enabled, t.delete_enabled, t.read_enabled, t.list_enabled
		FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.registry_id = ? AND r.name = ? AND t.name = ?`), registryID, repo, tag))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("store: tag %s of %s: %w", tag, repo, err)
	}
	return t, nil
}

// manifestInfoColumns adds to manifestColumns the image size (the manifest and the blobs it
// references in the repository), the update time and the attributes.
const manifestInfoColumns = manifestColumns + `, m.size + COALESCE((SELECT CAST(SUM(b.size) AS BIGINT) FROM manifest_references mr
		JOIN repository_blobs b ON b.repository_id = mr.repository_id AND b.digest = mr.child
		WHERE mr.repository_id = m.repository_id AND mr.digest = m.digest), 0),
	m.updated_at, m.write_enabled, m.delete_enabled, m.read_enabled, m.list_enabled`

func scanManifestInfo(sc scanner) (ManifestInfo, error) {
	var mi ManifestInfo
	var d, subject, ann string
	var created, updated, w, del, r, l int64
	if err := sc.Scan(&d, &mi.MediaType, &mi.ArtifactType, &mi.Size, &subject, &ann, &created, &mi.ConfigMediaType, &mi.Architecture, &mi.OS, &mi.ImageSize, &updated, &w, &del, &r, &l); err != nil {
		return mi, err
	}
	mi.Digest, mi.Subject, mi.CreatedAt = oci.Digest(d), oci.Digest(subject), time.UnixMilli(created)
	mi.UpdatedAt = time.UnixMilli(max(created, updated))
	mi.Attributes = attrs(w, del, r, l)
	return mi, nil
}

// ManifestInfos lists up to n manifests of the repository after last (a digest) in order, each
// with its tags; more reports whether others follow. ErrNotFound for an unknown repository.
func (s *Store) ManifestInfos(ctx context.Context, registryID int64, repo string, order Order, last string, n int) (list []ManifestInfo, more bool, err error) {
	id, err := s.repoID(ctx, s.r, registryID, repo)
	if err != nil {
		return nil, false, err
	}
	where, orderBy, args := s.pageAfter(ctx, listPage{table: "manifests", alias: "m", key: "digest", time: "created_at", repoID: id}, order, last)
	args = append(args, n+1)
	list, err = queryAll(ctx, s.r, s.q(`SELECT `+manifestInfoColumns+` FROM manifests m WHERE `+where+` ORDER BY `+orderBy+` LIMIT ?`), args, scanManifestInfo)
	if err != nil {
		return nil, false, fmt.Errorf("store: manifests of %s: %w", repo, err)
	}
	list, more = page(list, n)
	if err := s.manifestTags(ctx, id, list); err != nil {
		return nil, false, fmt.Errorf("store: manifests of %s: %w", repo, err)
	}
	return list, more, nil
}

// manifestTags fills in the tags of each manifest of list.
func (s *Store) manifestTags(ctx context.Context, repoID int64, list []ManifestInfo) error {
	if len(list) == 0 {
		return nil
	}
	at := make(map[oci.Digest]int, len(list))
	args := []any{repoID}
	for i, m := range list {
		at[m.Digest] = i
		list[i].Tags = []string{}
		args = append(args, string(m.Digest))
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT digest, name FROM tags WHERE repository_id = ? AND digest IN (?`+strings.Repeat(", ?", len(list)-1)+`) ORDER BY name`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d, name string
		if err := rows.Scan(&d, &name); err != nil {
			return err
		}
		if i, ok := at[oci.Digest(d)]; ok {
			list[i].Tags = append(list[i].Tags, name)
		}
	}
	return rows.Err()
}

// ManifestInfo describes manifest d of the repository, or ErrNotFound.
func (s *Store) ManifestInfo(ctx context.Context, registryID int64, repo string, d oci.Digest) (ManifestInfo, error) {
	id, err := s.repoID(ctx, s.r, registryID, repo)
	if err != nil {
		return ManifestInfo{}, err
	}
	mi, err := scanManifestInfo(s.r.QueryRowContext(ctx, s.q(`SELECT `+manifestInfoColumns+` FROM manifests m WHERE m.repository_id = ? AND m.digest = ?`), id, string(d)))
	if errors.Is(err, sql.ErrNoRows) {
		return mi, ErrNotFound
	}
	if err != nil {
		return mi, fmt.Errorf("store: manifest %s of %s: %w", d, repo, err)
	}
	list := []ManifestInfo{mi}
	if err := s.manifestTags(ctx, id, list); err != nil {
		return mi, fmt.Errorf("store: manifest %s of %s: %w", d, repo, err)
	}
	return list[0], nil
}

// DeleteRepository removes a repository with its manifests, tags and blob links (the blobs go
// at the next garbage collection), and returns what it held; ErrNotFound if it holds no manifest.
func (s *Store) DeleteRepository(ctx context.Context, registryID int64, repo string) (manifests []oci.Digest, tags []string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, err := s.repoID(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT digest FROM manifests WHERE repository_id = ? ORDER BY digest`), id)
		if err != nil {
			return err
		}
		ds, err := scanStrings(rows)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return ErrNotFound
		}
		// Anything locked in it keeps the whole repository.
		if err := s.repoLock(ctx, tx, id, repo, true); err != nil {
			return err
		}
		if err := s.lockOf(ctx, tx, "manifest %s of repository "+repo, `SELECT digest, write_enabled, delete_enabled FROM manifests WHERE repository_id = ? AND (write_enabled = 0 OR delete_enabled = 0)`, true, id); err != nil {
			return err
		}
		if err := s.lockOf(ctx, tx, "tag %s of repository "+repo, `SELECT name, write_enabled, delete_enabled FROM tags WHERE repository_id = ? AND (write_enabled = 0 OR delete_enabled = 0)`, true, id); err != nil {
			return err
		}
		for _, d := range ds {
			manifests = append(manifests, oci.Digest(d))
		}
		if rows, err = tx.QueryContext(ctx, s.q(`SELECT name FROM tags WHERE repository_id = ? ORDER BY name`), id); err != nil {
			return err
		}
		if tags, err = scanStrings(rows); err != nil {
			return err
		}
		if err := s.softDelete(ctx, tx, registryID, id, repo, ds); err != nil {
			return err
		}
		for _, d := range ds {
			if err := s.enqueueDelete(ctx, tx, registryID, id, repo, d, ""); err != nil {
				return err
			}
		}
		for _, q := range []string{`DELETE FROM tags WHERE repository_id = ?`, `DELETE FROM manifest_references WHERE repository_id = ?`,
			`DELETE FROM manifests WHERE repository_id = ?`, `DELETE FROM repository_blobs WHERE repository_id = ?`, `DELETE FROM repositories WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
				return err
			}
		}
		return nil
	})
	var le *LockedError
	if errors.Is(err, ErrNotFound) || errors.As(err, &le) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: delete repository %s: %w", repo, err)
	}
	return manifests, tags, nil
}

// Usage is what a registry holds: az acr show-usage's figures.
type Usage struct {
	Bytes        int64 // of the blobs and manifests its repositories reference, each once per repository
	Repositories int64 // holding at least one manifest
	Manifests    int64
	Tags         int64
}

// RegistryUsage adds up what a registry holds.
func (s *Store) RegistryUsage(ctx context.Context, registryID int64) (Usage, error) {
	var u Usage
	err := s.r.QueryRowContext(ctx, s.q(`SELECT
		COALESCE((SELECT CAST(SUM(b.size) AS BIGINT) FROM repository_blobs b JOIN repositories r ON r.id = b.repository_id WHERE r.registry_id = ?), 0) +
		COALESCE((SELECT CAST(SUM(m.size) AS BIGINT) FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.registry_id = ?), 0),
		(SELECT COUNT(*) FROM repositories r WHERE r.registry_id = ? AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)),
		(SELECT COUNT(*) FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.registry_id = ?),
		(SELECT COUNT(*) FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.registry_id = ?)`),
		registryID, registryID, registryID, registryID, registryID).Scan(&u.Bytes, &u.Repositories, &u.Manifests, &u.Tags)
	if err != nil {
		return u, fmt.Errorf("store: usage: %w", err)
	}
	return u, nil
}

// LockedError is a change a lock refuses: What (`tag "prod" of repository team/app`) is
// Attribute-disabled (write or delete).
type LockedError struct {
	What      string
	Attribute string
}

func (e *LockedError) Error() string { return e.What + " is " + e.Attribute + "-disabled" }

// lockOf reads a row's write and delete attributes and returns the LockedError a change needs
// to avoid: write-disabled refuses writes and deletes, delete-disabled deletes.
func (s *Store) lockOf(ctx context.Context, tx *sql.Tx, what, query string, deleting bool, args ...any) error {
	rows, err := tx.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var w, d int64
		if err := rows.Scan(&name, &w, &d); err != nil {
			return err
		}
		subject := what
		if name != "" {
			subject = fmt.Sprintf(what, name)
		}
		if w == 0 {
			return &LockedError{What: subject, Attribute: "write"}
		}
		if deleting && d == 0 {
			return &LockedError{What: subject, Attribute: "delete"}
		}
	}
	return rows.Err()
}

// repoLock is the lock of the repository itself for a change.
func (s *Store) repoLock(ctx context.Context, tx *sql.Tx, repoID int64, repo string, deleting bool) error {
	return s.lockOf(ctx, tx, "repository "+repo, `SELECT '', write_enabled, delete_enabled FROM repositories WHERE id = ?`, deleting, repoID)
}

// AttributesUpdate changes some of a repository's, tag's or manifest's attributes; nil stays.
type AttributesUpdate struct {
	WriteEnabled, DeleteEnabled, ReadEnabled, ListEnabled *bool
}

func (u AttributesUpdate) set() (string, []any) {
	var cols []string
	var args []any
	for _, c := range []struct {
		col string
		v   *bool
	}{{"write_enabled", u.WriteEnabled}, {"delete_enabled", u.DeleteEnabled}, {"read_enabled", u.ReadEnabled}, {"list_enabled", u.ListEnabled}} {
		if c.v != nil {
			cols = append(cols, c.col+" = ?")
			args = append(args, boolInt(*c.v))
		}
	}
	return strings.Join(cols, ", "), args
}

// UpdateAttributes changes the attributes of a repository (tag and digest ""), one of its tags
// or one of its manifests, and returns them; ErrNotFound if there is no such thing.
func (s *Store) UpdateAttributes(ctx context.Context, registryID int64, repo, tag string, digest oci.Digest, u AttributesUpdate) (Attributes, error) {
	var out Attributes
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := s.repoID(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		table, where, key := "repositories", "id = ?", []any{id}
		switch {
		case tag != "":
			table, where, key = "tags", "repository_id = ? AND name = ?", []any{id, tag}
		case digest != "":
			table, where, key = "manifests", "repository_id = ? AND digest = ?", []any{id, string(digest)}
		default:
			var n int64 // a repository without a manifest is not there for the API
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM manifests WHERE repository_id = ?`), id).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
		}
		if cols, args := u.set(); cols != "" {
			// A tag's times are its pushes (listings by time, purge's age): a lock leaves them.
			if table != "tags" {
				cols += ", updated_at = ?"
				args = append(args, s.millis())
			}
			if err := s.execOne(ctx, tx, `UPDATE `+table+` SET `+cols+` WHERE `+where, append(args, key...)...); err != nil {
				return err
			}
		}
		var w, d, r, l int64
		err = tx.QueryRowContext(ctx, s.q(`SELECT `+attributeColumns+` FROM `+table+` WHERE `+where), key...).Scan(&w, &d, &r, &l)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		out = attrs(w, d, r, l)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return out, ErrNotFound
	}
	if err != nil {
		return out, fmt.Errorf("store: attributes of %s: %w", repo, err)
	}
	return out, nil
}

// RepositoryUsage adds up what one repository holds (Repositories is 1, or 0 for none).
func (s *Store) RepositoryUsage(ctx context.Context, registryID int64, repo string) (Usage, error) {
	var u Usage
	err := s.r.QueryRowContext(ctx, s.q(`SELECT
		COALESCE((SELECT CAST(SUM(b.size) AS BIGINT) FROM repository_blobs b WHERE b.repository_id = r.id), 0) +
		COALESCE((SELECT CAST(SUM(m.size) AS BIGINT) FROM manifests m WHERE m.repository_id = r.id), 0),
		(SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id),
		(SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id)
		FROM repositories r WHERE r.registry_id = ? AND r.name = ?`), registryID, repo).Scan(&u.Bytes, &u.Manifests, &u.Tags)
	if errors.Is(err, sql.ErrNoRows) {
		return Usage{}, ErrNotFound
	}
	if err != nil {
		return u, fmt.Errorf("store: usage of %s: %w", repo, err)
	}
	if u.Manifests == 0 {
		return Usage{}, ErrNotFound
	}
	u.Repositories = 1
	return u, nil
}
