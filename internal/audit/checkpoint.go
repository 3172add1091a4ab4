package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Checkpoint is one line of the checkpoint file: the chain's head at a
// moment, signed. The file lives outside the database, so that whoever can
// rewrite the database cannot make its chain end earlier than a checkpoint
// says, nor make the row at a checkpoint's seq hash differently, unnoticed.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	Key  string    `json:"key"`
	Sig  string    `json:"sig"`
}

func newCheckpoint(k Key, seq int64, hash string, at time.Time) Checkpoint {
	at = at.UTC().Truncate(time.Microsecond)
	return Checkpoint{Seq: seq, Hash: hash, At: at, Key: k.ID, Sig: checkpointSig(k, seq, hash, at)}
}

// appendCheckpoint adds cp as one JSON line and syncs the file. One write
// of a short line with O_APPEND lands whole, also when several processes
// sealing in turn share the file.
func appendCheckpoint(path string, cp Checkpoint) error {
	line, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: checkpoint file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	return f.Close()
}

// ErrNoCheckpointFile is returned by ReadCheckpoints for a file that does
// not exist.
var ErrNoCheckpointFile = errors.New("no checkpoint file")

// ReadCheckpoints reads the checkpoint file. A line that is not a
// checkpoint (the torn last line of a crash) is skipped and counted in bad.
func ReadCheckpoints(path string) (cps []Checkpoint, bad []int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w at %s", ErrNoCheckpointFile, path)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var cp Checkpoint
		if err := json.Unmarshal(sc.Bytes(), &cp); err != nil || cp.Seq <= 0 {
			bad = append(bad, n)
			continue
		}
		cps = append(cps, cp)
	}
	return cps, bad, sc.Err()
}

// verifySig reports whether cp was signed by a key of kr.
func (kr *Keyring) verifyCheckpoint(cp Checkpoint) bool {
	k, ok := kr.lookup(cp.Key)
	return ok && hmacEqual(checkpointSig(k, cp.Seq, cp.Hash, cp.At), cp.Sig)
}
