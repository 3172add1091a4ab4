package harness

// Documents of the health record that other domains' tests use to put a
// patient's record in a known state.
const (
	StartEncounterMutation = `mutation($in: StartEncounterInput!) {
  startEncounter(input: $in) { id status type reason startedAt endedAt patient { id } department { id } provider { id } }
}`
	RecordProblemMutation = `mutation($in: RecordProblemInput!) { recordProblem(input: $in) { id icd10Code display status recordedBy { id } } }`
)
