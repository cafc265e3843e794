package agentcomponent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Modes of the placed files: what the agent's unpacker gives its own
// components (the package's modes without world bits, step_unpack.go).
const (
	binaryMode = 0o750
	specMode   = 0o640
)

// Source is what is placed: this teleportbeat's binary and the spec of its
// version.
type Source struct {
	Binary string // path of the binary to copy
	Spec   []byte // teleportbeat.spec.yml
}

// Outcome says what Place or Remove did in one home.
type Outcome string

const (
	Placed    Outcome = "placed"
	InPlace   Outcome = "already in place"
	Removed   Outcome = "removed"
	NotThere  Outcome = "not there"
	Withdrawn Outcome = "withdrawn" // placed, failed its check, spec taken back out
	// Gone: the home was removed meanwhile (the upgrade watcher's cleanup
	// of the previous version, or a rollback of the new one).
	Gone Outcome = "removed by the agent meanwhile"
	// LeftAlone: a version older than the active one, which an upgrade
	// left (see Previous).
	LeftAlone Outcome = "left alone: older than the active version, the one an upgrade left (its watcher removes it)"
)

// Place puts the binary and then the spec into the home's components
// directory, owned as the directory is, unless they are there already.
// wait is how long to wait for the components directory of a home the
// agent is still unpacking. After placing, the home is checked as the
// agent would load it; a spec that would stop the agent (an input another
// spec declares too) is taken out again, the binary left.
func Place(ctx context.Context, h Home, src Source, wait time.Duration) (Outcome, error) {
	out, err := place(ctx, h, src, wait)
	if err != nil {
		if _, statErr := os.Stat(h.Dir); errors.Is(statErr, fs.ErrNotExist) {
			return Gone, nil
		}
	}
	return out, err
}

func place(ctx context.Context, h Home, src Source, wait time.Duration) (Outcome, error) {
	if err := h.Compatible(); err != nil {
		return "", err
	}
	dir := h.Components()
	info, err := waitForDir(ctx, dir, wait)
	if err != nil {
		return "", err
	}
	uid, gid := owner(info)
	bin, spec := filepath.Join(dir, Name), filepath.Join(dir, SpecName)
	srcInfo, err := os.Stat(src.Binary)
	if err != nil {
		return "", fmt.Errorf("the binary to place: %w", err)
	}
	if same(bin, spec, srcInfo, src.Spec, uid) {
		return InPlace, nil
	}
	// The binary first: a spec without its binary stops the whole agent.
	if err := writeAtomic(bin, binaryMode, uid, gid, srcInfo.ModTime(), func(w io.Writer) error {
		f, err := os.Open(src.Binary)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}); err != nil {
		return "", fmt.Errorf("placing the binary in %s: %w", dir, err)
	}
	if err := writeAtomic(spec, specMode, uid, gid, time.Time{}, func(w io.Writer) error {
		_, err := w.Write(src.Spec)
		return err
	}); err != nil {
		return "", fmt.Errorf("placing the spec in %s (the binary is there, harmless without it): %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	if err := loadable(dir); err != nil {
		if rmErr := removeSync(spec); rmErr != nil {
			return "", errors.Join(fmt.Errorf("Elastic Agent would not start with teleportbeat's spec in %s: %w", dir, err),
				fmt.Errorf("and it could not be taken out again, remove it by hand: %w", rmErr))
		}
		return Withdrawn, fmt.Errorf("Elastic Agent would not start with teleportbeat's spec in %s, so it was taken out again: %w", dir, err)
	}
	return Placed, nil
}

// Remove takes teleportbeat out of the home: the spec first, then the
// binary, so that the agent never finds the one without the other.
func Remove(h Home) (Outcome, error) {
	dir := h.Components()
	spec, bin := filepath.Join(dir, SpecName), filepath.Join(dir, Name)
	out := NotThere
	for _, p := range []string{spec, bin} {
		err := removeSync(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("removing %s: %w", p, err)
		default:
			out = Removed
		}
	}
	// Leftovers of an interrupted Place.
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+Name+"*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return out, nil
}

// same says whether the placed files are this source's: the binary of the
// same size and modification time (Place stamps it with the source's),
// mode and an owner the agent accepts, and the same spec.
func same(bin, spec string, src fs.FileInfo, specData []byte, uid int) bool {
	bi, err := os.Stat(bin)
	if err != nil || bi.Size() != src.Size() || !bi.ModTime().Equal(src.ModTime()) || bi.Mode().Perm() != binaryMode {
		return false
	}
	if u, _ := owner(bi); u != uid && u != 0 {
		return false
	}
	b, err := os.ReadFile(spec)
	return err == nil && bytes.Equal(b, specData)
}

// waitForDir waits up to wait for dir to exist: Place may be called (by the
// path unit) as soon as the agent starts unpacking a new version.
func waitForDir(ctx context.Context, dir string, wait time.Duration) (fs.FileInfo, error) {
	deadline := time.Now().Add(wait)
	for {
		info, err := os.Stat(dir)
		if err == nil {
			if !info.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", dir)
			}
			return info, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("the agent's home %s: %w", filepath.Dir(dir), err)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%s does not exist (a home the agent did not finish unpacking, or not an agent's home)", dir)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeAtomic writes a file under a temporary name the agent does not
// read (it globs *.spec.yml and runs only named binaries), syncs it and
// renames it into place.
func writeAtomic(path string, mode os.FileMode, uid, gid int, mtime time.Time, fill func(io.Writer) error) error {
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Chmod(mode) // whatever the umask
	}
	if err == nil && os.Geteuid() == 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Sync()
	}
	if cErr := f.Close(); err == nil {
		err = cErr
	}
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(tmp, mtime, mtime)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func removeSync(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// owner is a file's uid and gid.
func owner(info fs.FileInfo) (int, int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return os.Geteuid(), os.Getegid()
}
