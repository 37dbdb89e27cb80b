package renormalize

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/pii"
)

// SourceSet gives the sources (and so the mappings) as they are configured now.
type SourceSet interface {
	Current() (*mapping.Sources, error)
}

// File is the sources file at a path, re-read whenever its modification time or size changes.
// An operator who fixes a mapping expects the next renormalizing replay to use the fixed file,
// without restarting the replayer; a stat per request is cheap next to the GCS read that
// follows. Safe for concurrent use.
type File struct {
	path   string
	hasher *pii.Hasher

	mu   sync.Mutex
	mod  time.Time
	size int64
	cur  *mapping.Sources
}

var _ SourceSet = (*File)(nil)

// LoadFile reads and validates the sources file at path, so a broken file fails start-up.
func LoadFile(path string, h *pii.Hasher) (*File, error) {
	f := &File{path: path, hasher: h}
	if _, err := f.Current(); err != nil {
		return nil, err
	}
	return f, nil
}

// Current returns the sources, re-reading the file if it changed since the last read. A file
// that is missing or invalid now is an error (the last good version is not used: a replay
// must not silently run a mapping the operator has replaced); the next call tries again.
func (f *File) Current() (*mapping.Sources, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("sources file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return f.cur, nil
	}
	s, err := mapping.LoadSources(f.path)
	if err != nil {
		return nil, err
	}
	s.UseHasher(f.hasher)
	// The stat is from before the read: if the file changed in between, the next call sees a
	// newer time and reads it again.
	f.cur, f.mod, f.size = s, fi.ModTime(), fi.Size()
	return s, nil
}
