package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"entgo.io/ent/schema/mixin"

	"github.com/hmis-dev/hmis/internal/globalid"
)

// IDMixin gives an entity an opaque global ID: a type prefix and a ULID.
// The prefix lets node(id:) find the table without a lookup, and the ULID
// makes IDs unguessable while still sorting by creation time.
type IDMixin struct {
	mixin.Schema
	prefix string
}

func withID(prefix string) IDMixin { return IDMixin{prefix: prefix} }

func (m IDMixin) Fields() []ent.Field {
	prefix := m.prefix
	return []ent.Field{
		field.String("id").
			Immutable().
			NotEmpty().
			DefaultFunc(func() string { return globalid.New(prefix) }),
	}
}

func (m IDMixin) Annotations() []schema.Annotation {
	return []schema.Annotation{globalid.Annotation{Prefix: m.prefix}}
}

// TimeMixin records creation and last change, always in UTC.
type TimeMixin struct{ mixin.Schema }

func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Immutable().
			Default(nowUTC).
			Annotations(entgql.OrderField("CREATED_AT"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("updated_at").
			Default(nowUTC).
			UpdateDefault(nowUTC).
			Annotations(entgql.OrderField("UPDATED_AT"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func nowUTC() time.Time { return time.Now().UTC() }

// PatientOwnedMixin marks an entity as part of a patient's record: a
// patient_id field and the edge to Patient, whose inverse is ref. Code
// generation lists every such entity in ent.PatientColumn, which row scope
// and the audit trail key on. patient_id is mutable only so that merging
// duplicate records can move items to the surviving patient.
type PatientOwnedMixin struct {
	mixin.Schema
	ref string
}

func ownedByPatient(ref string) PatientOwnedMixin { return PatientOwnedMixin{ref: ref} }

func (PatientOwnedMixin) Fields() []ent.Field {
	return []ent.Field{field.String("patient_id").NotEmpty()}
}

func (m PatientOwnedMixin) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("patient", Patient.Type).Ref(m.ref).Field("patient_id").Unique().Required(),
	}
}

func (PatientOwnedMixin) Indexes() []ent.Index {
	return []ent.Index{index.Fields("patient_id")}
}

// freeText marks a field of prose (a reason, a note, an address line) that
// no screen lists rows by. It stays readable and writable but offers no
// where-filter: each would add fifteen operators to the where input, which
// gqlgen decodes for every row a nested list is filtered on.
var freeText = entgql.Skip(entgql.SkipWhereInput)

// Encrypted marks a field that is stored encrypted (internal/crypt): the
// database holds only ciphertext bound to its table, column and row, while
// ent and the domain code see plaintext. Code generation lists every such
// field in ent.EncryptedColumns, which the encryption hooks, key rotation
// and the at-rest tests read, so marking a field is all it takes.
// BlindIndex, when set, names a hidden column that keeps a keyed hash of the
// normalised value, so that exact-match lookups still work.
type Encrypted struct {
	BlindIndex string `json:"blindIndex"`
}

// Name implements schema.Annotation.
func (Encrypted) Name() string { return "Encrypted" }

// encrypted is the annotation of an encrypted field. A ciphertext can be
// neither filtered nor ordered by, so the field offers neither; and since
// ent validates after its hooks have run, an encrypted field carries no
// length validator: the domain's input checks bound its plaintext.
var encrypted = []schema.Annotation{Encrypted{}, entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)}

// encryptedIndexed is encrypted with a blind index in column, which the
// schema declares as blindIndex(column).
func encryptedIndexed(column string) []schema.Annotation {
	return []schema.Annotation{Encrypted{BlindIndex: column}, entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)}
}

// blindIndex is the hidden column that keeps the blind index of an
// encrypted field: never in the API, only compared for equality.
func blindIndex(column string) ent.Field {
	return field.String(column).Optional().Nillable().Annotations(entgql.Skip())
}
