package notes

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// WriteNoteInput is the input of writeNote.
type WriteNoteInput struct {
	PatientID   string
	EncounterID *string
	Type        clinicalnote.Type
	Text        string
}

// AmendNoteInput is the input of amendNote.
type AmendNoteInput struct {
	Text   string
	Reason string
}

// Limits on what a note may say.
const (
	// Long enough for any discharge summary; a note is not a document store.
	MaxTextLength   = 100_000
	MaxReasonLength = 500
)

// Service keeps clinical notes: drafts, signing and amendments.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// Write starts a DRAFT note by the viewer, who must be an active doctor or nurse.
func (s *Service) Write(ctx context.Context, in WriteNoteInput) (*ent.ClinicalNote, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	if c.Err() == nil && clinicalnote.TypeValidator(in.Type) != nil {
		c.Fail(apperr.BadInput("input.type", "must be one of PROGRESS, ADMISSION, DISCHARGE, CONSULT"))
	}
	text := c.Text("input.text", in.Text, MaxTextLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ClinicalNote, error) {
		author, err := auth.ActingStaff(ctx, tx.Staff, "write notes", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return nil, err
		}
		pat, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if in.EncounterID != nil {
			enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
			if ent.IsNotFound(err) || (err == nil && enc.PatientID != pat.ID) {
				return nil, apperr.BadInput("input.encounterId", "is not an encounter of this patient")
			} else if err != nil {
				return nil, err
			}
		}
		return tx.ClinicalNote.Create().
			SetPatientID(pat.ID).
			SetNillableEncounterID(in.EncounterID).
			SetType(in.Type).
			SetText(text).
			SetAuthorID(author.ID).
			Save(ctx)
	})
}

// UpdateDraft replaces the text of the viewer's own draft.
func (s *Service) UpdateDraft(ctx context.Context, id, text string) (*ent.ClinicalNote, error) {
	var c input.Checker
	c.ID("id", id, input.ClinicalNote)
	text = c.Text("text", text, MaxTextLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.changeDraft(ctx, id, "edited", func(u *ent.ClinicalNoteUpdateOne) { u.SetText(text) })
}

// Sign signs the viewer's own draft; from then on it never changes.
func (s *Service) Sign(ctx context.Context, id string) (*ent.ClinicalNote, error) {
	if err := input.ID("id", id, input.ClinicalNote); err != nil {
		return nil, err
	}
	return s.changeDraft(ctx, id, "signed", func(u *ent.ClinicalNoteUpdateOne) {
		u.SetStatus(clinicalnote.StatusSIGNED).SetSignedAt(s.now().UTC())
	})
}

// DiscardDraft deletes the viewer's own draft and returns its ID.
func (s *Service) DiscardDraft(ctx context.Context, id string) (string, error) {
	if err := input.ID("id", id, input.ClinicalNote); err != nil {
		return "", err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (string, error) {
		if _, err := ownDraft(ctx, tx, id, "discarded"); err != nil {
			return "", err
		}
		n, err := tx.ClinicalNote.Delete().
			Where(clinicalnote.ID(id), clinicalnote.StatusEQ(clinicalnote.StatusDRAFT)).
			Exec(ctx)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", apperr.Conflictf("the note changed meanwhile; reload it")
		}
		return id, nil
	})
}

// Amend replaces a SIGNED note with a new one by the viewer, signed at
// once; the old note stays, marked AMENDED. Of concurrent amendments of one
// note exactly one succeeds.
func (s *Service) Amend(ctx context.Context, id string, in AmendNoteInput) (*ent.ClinicalNote, error) {
	var c input.Checker
	c.ID("id", id, input.ClinicalNote)
	text := c.Text("input.text", in.Text, MaxTextLength)
	reason := c.Text("input.reason", in.Reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ClinicalNote, error) {
		author, err := auth.ActingStaff(ctx, tx.Staff, "amend notes", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return nil, err
		}
		old, err := lockedNote(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if old.Status != clinicalnote.StatusSIGNED {
			return nil, apperr.Conflictf("the note is %s; only a SIGNED note can be amended", old.Status)
		}
		now := s.now().UTC()
		// Mark the old note first: the conditional update is what lets only
		// one of several concurrent amendments through.
		if err := tx.ClinicalNote.UpdateOneID(id).Where(clinicalnote.StatusEQ(clinicalnote.StatusSIGNED)).
			SetStatus(clinicalnote.StatusAMENDED).Exec(ctx); err != nil {
			return nil, changedMeanwhile(err)
		}
		amended, err := tx.ClinicalNote.Create().
			SetPatientID(old.PatientID).
			SetNillableEncounterID(old.EncounterID).
			SetType(old.Type).
			SetStatus(clinicalnote.StatusSIGNED).
			SetText(text).
			SetAuthorID(author.ID).
			SetSignedAt(now).
			SetReplacesID(old.ID).
			SetAmendReason(reason).
			Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the note was amended meanwhile; reload it")
		}
		return amended, err
	})
}

// changeDraft applies set to the viewer's own draft, conditional on it
// still being a draft, so that an edit racing a signature cannot change a
// signed note.
func (s *Service) changeDraft(ctx context.Context, id, pastTense string, set func(*ent.ClinicalNoteUpdateOne)) (*ent.ClinicalNote, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ClinicalNote, error) {
		if _, err := ownDraft(ctx, tx, id, pastTense); err != nil {
			return nil, err
		}
		u := tx.ClinicalNote.UpdateOneID(id).Where(clinicalnote.StatusEQ(clinicalnote.StatusDRAFT))
		set(u)
		changed, err := u.Save(ctx)
		return changed, changedMeanwhile(err)
	})
}

// ownDraft loads a note the viewer wrote that is still a draft. Clinicians
// may see one another's drafts, so someone else's draft is FORBIDDEN rather
// than NOT_FOUND.
func ownDraft(ctx context.Context, tx *ent.Tx, id, pastTense string) (*ent.ClinicalNote, error) {
	n, err := lockedNote(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if v := auth.FromContext(ctx); v == nil || v.StaffID == "" || v.StaffID != n.AuthorID {
		return nil, apperr.Denied("only the author of a draft may have it %s", pastTense)
	}
	if n.Status != clinicalnote.StatusDRAFT {
		return nil, apperr.Conflictf("the note is %s; only a DRAFT can be %s", n.Status, pastTense)
	}
	return n, nil
}

func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("the note changed meanwhile; reload it")
	}
	return err
}

// lockedNote reads a note under its patient's lock.
func lockedNote(ctx context.Context, tx *ent.Tx, id string) (*ent.ClinicalNote, error) {
	return store.GetLocked(ctx, tx, tx.ClinicalNote.Get, id, func(n *ent.ClinicalNote) string { return n.PatientID }, "clinical note not found")
}
