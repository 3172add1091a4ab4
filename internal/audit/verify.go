package audit

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
)

// Reasons a BrokenError gives. For each sealed row they are checked in
// this order: seq, prev_hash, key, hash, entry MAC, position, checkpoint.
const (
	ReasonSeqGap      = "seq does not follow the previous row's: a row was deleted or inserted"
	ReasonPrevHash    = "prev_hash does not match the previous row's hash: rows were reordered or replaced"
	ReasonUnknownKey  = "sealed with a key ID that is not among the audit keys"
	ReasonHash        = "hash does not match the row's content: the row was edited, or sealed without the audit key"
	ReasonEntryMAC    = "entry MAC does not match the row's content: the row was not written by HMIS, or was edited before it was sealed"
	ReasonPosition    = "position does not match seq: the listing order was changed"
	ReasonLegacyAfter = "a row of the unkeyed chain of earlier versions follows keyed rows"
	ReasonCheckpoint  = "hash differs from the signed checkpoint for this seq: the chain was rewritten"
	ReasonTruncated   = "the chain ends before the last signed checkpoint: rows were cut off"
)

// BrokenError names the first row at which the trail does not hold. Seq
// is 0 for an unsealed row; ID is empty for a row that is missing
// (ReasonTruncated), whose seq Seq is.
type BrokenError struct {
	Seq    int64
	ID     string
	Reason string
	Detail string
}

func (e *BrokenError) Error() string {
	where := fmt.Sprintf("seq %d (%s)", e.Seq, e.ID)
	switch {
	case e.Seq == 0:
		where = "unsealed row " + e.ID
	case e.ID == "":
		where = fmt.Sprintf("seq %d (missing)", e.Seq)
	}
	msg := "audit trail broken at " + where + ": " + e.Reason
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// CheckpointError is a line of the checkpoint file that no audit key
// signed: the file, not the database, was tampered with (or the keys are
// not the ones that sealed the trail).
type CheckpointError struct {
	Line int
	Seq  int64
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("checkpoint on line %d (seq %d) is not signed by any audit key", e.Line, e.Seq)
}

// Report is what Verify found.
type Report struct {
	Checked     int64 // sealed rows found intact
	Head        int64 // seq of the last sealed row
	Legacy      int64 // of them, rows of the unkeyed chain of earlier versions
	Checkpoints int   // checkpoints matched against the chain
	Unsealed    int64 // rows not sealed yet
	Stale       int64 // of them, rows older than the staleness limit
	Findings    []string
}

// DefaultStaleAfter is how old an unsealed row may be before Verify reports
// it: far beyond a working sealer's delay.
const DefaultStaleAfter = time.Minute

// Verify checks the whole trail and returns what it found, with a
// *BrokenError naming the first row at which the trail does not hold (or a
// *CheckpointError for a forged checkpoint).
//
// It walks the sealed rows in seq order checking seq continuity, links,
// keyed hashes and the entry MAC of each row, compares the rows at the
// checkpoints' seqs with their signed hashes and the chain's end with the
// last checkpoint, and checks the entry MAC of the unsealed rows. What is
// suspicious without proving tampering — unsealed rows older than
// staleAfter (a sealer that stopped), a missing checkpoint file, a chain
// only of unkeyed rows, torn checkpoint lines — is listed in Findings.
//
// It reads in batches so its memory does not grow with the trail, through
// the ent client: a context under which row scoping hides audit rows would
// report the hidden rows as missing, so run it as the system.
func (t *Trail) Verify(ctx context.Context, staleAfter time.Duration) (Report, error) {
	var rep Report
	cps, missing, err := t.checkpoints(&rep)
	if err != nil {
		return rep, err
	}
	keys := t.opts.Keys
	prevSeq, prevHash, keyed := int64(0), GenesisHash, false
	next := 0 // the first checkpoint not yet reached
	for {
		rows, err := t.st.Client.AuditEvent.Query().
			Where(auditevent.SeqNotNil(), auditevent.SeqGT(prevSeq)).
			Order(auditevent.BySeq()).
			Limit(t.batch).
			All(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: read rows after seq %d: %w", prevSeq, err)
		}
		for _, r := range rows {
			seq, hash := *r.Seq, deref(r.Hash)
			broken := func(reason string) error { return &BrokenError{Seq: seq, ID: r.ID, Reason: reason} }
			switch {
			case seq != prevSeq+1:
				return rep, broken(ReasonSeqGap)
			case deref(r.PrevHash) != prevHash:
				return rep, broken(ReasonPrevHash)
			}
			if r.KeyID == nil {
				switch {
				case keyed:
					return rep, broken(ReasonLegacyAfter)
				case legacyHash(r, seq, prevHash) != hash:
					return rep, broken(ReasonHash)
				}
				rep.Legacy++
			} else {
				k, ok := keys.lookup(*r.KeyID)
				switch {
				case !ok:
					return rep, broken(ReasonUnknownKey)
				case !hmacEqual(chainHash(k, r, seq, prevHash), hash):
					return rep, broken(ReasonHash)
				case !keys.entryValid(r):
					return rep, broken(ReasonEntryMAC)
				}
				keyed = true
			}
			if r.Position != seq && !(r.KeyID == nil && r.Position == 0) {
				return rep, broken(ReasonPosition)
			}
			for ; next < len(cps) && cps[next].Seq <= seq; next++ {
				if cps[next].Hash != hash {
					return rep, broken(ReasonCheckpoint)
				}
				rep.Checkpoints++
			}
			rep.Checked++
			prevSeq, prevHash = seq, hash
		}
		if len(rows) < t.batch {
			break
		}
	}
	rep.Head = prevSeq
	if next < len(cps) {
		last := cps[len(cps)-1]
		return rep, &BrokenError{Seq: prevSeq + 1, Reason: ReasonTruncated,
			Detail: fmt.Sprintf("the chain ends at seq %d, the checkpoint of %s names seq %d", prevSeq, last.At.Format(time.RFC3339), last.Seq)}
	}
	if missing != "" && rep.Head > 0 {
		rep.Findings = append(rep.Findings, missing+": rows cut off the end of the chain cannot be seen")
	}
	if rep.Legacy > 0 && !keyed {
		rep.Findings = append(rep.Findings, fmt.Sprintf("all %d sealed rows belong to the unkeyed chain of an earlier version: nothing vouches for them until a keyed row is sealed after them", rep.Legacy))
	}
	return rep, t.verifyUnsealed(ctx, &rep, staleAfter)
}

// checkpoints reads the checkpoint file, sorted by seq, every one signed;
// missing says why there are none to read.
func (t *Trail) checkpoints(rep *Report) (cps []Checkpoint, missing string, err error) {
	path := t.opts.CheckpointFile
	if path == "" {
		return nil, "no checkpoint file", nil
	}
	cps, bad, err := ReadCheckpoints(path)
	if errors.Is(err, ErrNoCheckpointFile) {
		return nil, err.Error(), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("audit: verify: %w", err)
	}
	if len(bad) > 0 {
		rep.Findings = append(rep.Findings, fmt.Sprintf("checkpoint file %s: %d unreadable lines (first: line %d)", path, len(bad), bad[0]))
	}
	for i, cp := range cps {
		if !t.opts.Keys.verifyCheckpoint(cp) {
			return nil, "", &CheckpointError{Line: i + 1 + countBefore(bad, i), Seq: cp.Seq}
		}
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	return cps, "", nil
}

// countBefore returns how many of the unreadable lines come before the
// i-th readable one, to name a checkpoint by its line in the file.
func countBefore(bad []int, i int) int {
	n := 0
	for _, line := range bad {
		if line <= i+1+n {
			n++
		}
	}
	return n
}

// verifyUnsealed checks the entry MAC of every row not sealed yet, and
// counts them and the stale ones.
func (t *Trail) verifyUnsealed(ctx context.Context, rep *Report, staleAfter time.Duration) error {
	if staleAfter <= 0 {
		staleAfter = DefaultStaleAfter
	}
	cutoff := time.Now().Add(-staleAfter)
	var oldest time.Time
	after := ""
	for {
		q := t.st.Client.AuditEvent.Query().Where(auditevent.SeqIsNil())
		if after != "" {
			q = q.Where(auditevent.IDGT(after))
		}
		rows, err := q.Order(auditevent.ByID()).Limit(t.batch).All(ctx)
		if err != nil {
			return fmt.Errorf("audit: verify: read unsealed rows: %w", err)
		}
		for _, r := range rows {
			if !t.opts.Keys.entryValid(r) {
				return &BrokenError{ID: r.ID, Reason: ReasonEntryMAC}
			}
			rep.Unsealed++
			if r.OccurredAt.Before(cutoff) {
				rep.Stale++
				if oldest.IsZero() || r.OccurredAt.Before(oldest) {
					oldest = r.OccurredAt
				}
			}
			after = r.ID
		}
		if len(rows) < t.batch {
			break
		}
	}
	if rep.Stale > 0 {
		rep.Findings = append(rep.Findings, fmt.Sprintf("%d rows unsealed for more than %s (the oldest from %s): is a sealer running?",
			rep.Stale, staleAfter, oldest.Format(time.RFC3339)))
	}
	return nil
}

// entryValid reports whether r's entry MAC is one of kr's keys' over r's
// content.
func (kr *Keyring) entryValid(r *ent.AuditEvent) bool {
	id, _, ok := strings.Cut(r.EntryMAC, ":")
	if !ok {
		return false
	}
	k, ok := kr.lookup(id)
	return ok && hmacEqual(entryMAC(k, r), r.EntryMAC)
}

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
