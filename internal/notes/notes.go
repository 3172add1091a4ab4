package notes

import (
	"context"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
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
	if !globalid.Valid(in.PatientID, "pat") {
		return nil, apperr.BadInput("input.patientId", "is not a patient ID")
	}
	if in.EncounterID != nil && !globalid.Valid(*in.EncounterID, "enc") {
		return nil, apperr.BadInput("input.encounterId", "is not an encounter ID")
	}
	if err := clinicalnote.TypeValidator(in.Type); err != nil {
		return nil, apperr.BadInput("input.type", "must be one of PROGRESS, ADMISSION, DISCHARGE, CONSULT")
	}
	text, err := validText("input.text", in.Text)
	if err != nil {
		return nil, err
	}
	var written *ent.ClinicalNote
	err = s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		author, err := auth.ActingStaff(ctx, tx.Staff, "write notes", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return err
		}
		pat, err := patients.Active(ctx, tx.Patient, "input.patientId", in.PatientID)
		if err != nil {
			return err
		}
		if in.EncounterID != nil {
			enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
			if ent.IsNotFound(err) || (err == nil && enc.PatientID != pat.ID) {
				return apperr.BadInput("input.encounterId", "is not an encounter of this patient")
			} else if err != nil {
				return err
			}
		}
		written, err = tx.ClinicalNote.Create().
			SetPatientID(pat.ID).
			SetNillableEncounterID(in.EncounterID).
			SetType(in.Type).
			SetText(text).
			SetAuthorID(author.ID).
			Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return written.Unwrap(), nil
}

// UpdateDraft replaces the text of the viewer's own draft.
func (s *Service) UpdateDraft(ctx context.Context, id, text string) (*ent.ClinicalNote, error) {
	if !globalid.Valid(id, "not") {
		return nil, apperr.BadInput("id", "is not a clinical note ID")
	}
	text, err := validText("text", text)
	if err != nil {
		return nil, err
	}
	return s.changeDraft(ctx, id, "edited", func(u *ent.ClinicalNoteUpdateOne) { u.SetText(text) })
}

// Sign signs the viewer's own draft; from then on it never changes.
func (s *Service) Sign(ctx context.Context, id string) (*ent.ClinicalNote, error) {
	if !globalid.Valid(id, "not") {
		return nil, apperr.BadInput("id", "is not a clinical note ID")
	}
	return s.changeDraft(ctx, id, "signed", func(u *ent.ClinicalNoteUpdateOne) {
		u.SetStatus(clinicalnote.StatusSIGNED).SetSignedAt(s.now().UTC())
	})
}

// DiscardDraft deletes the viewer's own draft and returns its ID.
func (s *Service) DiscardDraft(ctx context.Context, id string) (string, error) {
	if !globalid.Valid(id, "not") {
		return "", apperr.BadInput("id", "is not a clinical note ID")
	}
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if _, err := ownDraft(ctx, tx, id, "discarded"); err != nil {
			return err
		}
		n, err := tx.ClinicalNote.Delete().
			Where(clinicalnote.ID(id), clinicalnote.StatusEQ(clinicalnote.StatusDRAFT)).
			Exec(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.Conflictf("the note changed meanwhile; reload it")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// Amend replaces a SIGNED note with a new one by the viewer, signed at
// once; the old note stays, marked AMENDED. Of concurrent amendments of one
// note exactly one succeeds.
func (s *Service) Amend(ctx context.Context, id string, in AmendNoteInput) (*ent.ClinicalNote, error) {
	if !globalid.Valid(id, "not") {
		return nil, apperr.BadInput("id", "is not a clinical note ID")
	}
	text, err := validText("input.text", in.Text)
	if err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" || len(reason) > MaxReasonLength {
		return nil, apperr.BadInput("input.reason", "is required, at most %d characters", MaxReasonLength)
	}
	var amended *ent.ClinicalNote
	err = s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		author, err := auth.ActingStaff(ctx, tx.Staff, "amend notes", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return err
		}
		old, err := tx.ClinicalNote.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("clinical note not found")
		} else if err != nil {
			return err
		}
		if old.Status != clinicalnote.StatusSIGNED {
			return apperr.Conflictf("the note is %s; only a SIGNED note can be amended", old.Status)
		}
		now := s.now().UTC()
		// Mark the old note first: the conditional update is what lets only
		// one of several concurrent amendments through.
		if err := tx.ClinicalNote.UpdateOneID(id).Where(clinicalnote.StatusEQ(clinicalnote.StatusSIGNED)).
			SetStatus(clinicalnote.StatusAMENDED).Exec(ctx); err != nil {
			return changedMeanwhile(err)
		}
		amended, err = tx.ClinicalNote.Create().
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
			return apperr.Conflictf("the note was amended meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return amended.Unwrap(), nil
}

// changeDraft applies set to the viewer's own draft, conditional on it
// still being a draft, so that an edit racing a signature cannot change a
// signed note.
func (s *Service) changeDraft(ctx context.Context, id, pastTense string, set func(*ent.ClinicalNoteUpdateOne)) (*ent.ClinicalNote, error) {
	var changed *ent.ClinicalNote
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if _, err := ownDraft(ctx, tx, id, pastTense); err != nil {
			return err
		}
		u := tx.ClinicalNote.UpdateOneID(id).Where(clinicalnote.StatusEQ(clinicalnote.StatusDRAFT))
		set(u)
		var err error
		changed, err = u.Save(ctx)
		return changedMeanwhile(err)
	})
	if err != nil {
		return nil, err
	}
	return changed.Unwrap(), nil
}

// ownDraft loads a note the viewer wrote that is still a draft. Clinicians
// may see one another's drafts, so someone else's draft is FORBIDDEN rather
// than NOT_FOUND.
func ownDraft(ctx context.Context, tx *ent.Tx, id, pastTense string) (*ent.ClinicalNote, error) {
	n, err := tx.ClinicalNote.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("clinical note not found")
	} else if err != nil {
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

func validText(field, text string) (string, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return "", apperr.BadInput(field, "is required")
	case len(text) > MaxTextLength:
		return "", apperr.BadInput(field, "must be at most %d characters", MaxTextLength)
	}
	return text, nil
}
