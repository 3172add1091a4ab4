package audit

import (
	"context"
	"fmt"

	"github.com/hmis-dev/hmis/ent/auditevent"
)

// Reasons a BrokenError gives, checked in this order for each row.
const (
	ReasonSeqGap   = "seq does not follow the previous row's"
	ReasonPrevHash = "prev_hash does not match the previous row's hash"
	ReasonHash     = "hash does not match the row's content"
)

// BrokenError names the first row at which the chain does not hold.
type BrokenError struct {
	Seq    int64
	ID     string
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d (%s): %s", e.Seq, e.ID, e.Reason)
}

// Verify walks the whole chain in seq order and returns nil if it is intact,
// or a *BrokenError naming the first row whose seq does not follow the
// previous one (a deleted or inserted row), whose prev_hash is not the
// previous row's hash, or whose hash is not that of its content. checked
// counts the rows found intact before it stopped.
//
// It reads in batches so its memory does not grow with the trail. It reads
// through the ent client: a context under which row scoping hides audit rows
// would report the hidden rows as missing, so run it as the system.
// Rows appended while it runs are checked too, if they land before it
// reaches the end.
func (t *Trail) Verify(ctx context.Context) (checked int64, err error) {
	prevSeq, prevHash := int64(0), GenesisHash
	for {
		rows, err := t.st.Client.AuditEvent.Query().
			Where(auditevent.SeqGT(prevSeq)).
			Order(auditevent.BySeq()).
			Limit(t.batch).
			All(ctx)
		if err != nil {
			return checked, fmt.Errorf("audit: verify: read rows after seq %d: %w", prevSeq, err)
		}
		for _, r := range rows {
			switch {
			case r.Seq != prevSeq+1:
				return checked, &BrokenError{Seq: r.Seq, ID: r.ID, Reason: ReasonSeqGap}
			case r.PrevHash != prevHash:
				return checked, &BrokenError{Seq: r.Seq, ID: r.ID, Reason: ReasonPrevHash}
			case rowHash(r) != r.Hash:
				return checked, &BrokenError{Seq: r.Seq, ID: r.ID, Reason: ReasonHash}
			}
			checked++
			prevSeq, prevHash = r.Seq, r.Hash
		}
		if len(rows) < t.batch {
			return checked, nil
		}
	}
}
