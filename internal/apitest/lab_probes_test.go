package apitest

func init() {
	addProbes(map[string]string{
		"Query.labOrders":                     `{ labOrders(first: 1) { totalCount } }`,
		"Query.labOrderItems":                 `{ labOrderItems(first: 1) { totalCount } }`,
		"Query.labPanels":                     `{ labPanels(first: 1) { totalCount } }`,
		"Query.labResults":                    `{ labResults(first: 1) { totalCount } }`,
		"Query.labSpecimens":                  `{ labSpecimens(first: 1) { totalCount } }`,
		"Query.labTests":                      `{ labTests(first: 1) { totalCount } }`,
		"Query.labSpecimenByAccession":        `{ labSpecimenByAccession(accessionNumber: "NONE") { id } }`,
		"Query.unacknowledgedCriticalResults": `{ unacknowledgedCriticalResults { totalCount } }`,
		"Mutation.orderLabTests":              `mutation { orderLabTests(input: {patientId: "bad", testIds: ["bad"]}) { __typename } }`,
		"Mutation.cancelLabOrderItem":         `mutation { cancelLabOrderItem(id: "bad", reason: "x") { __typename } }`,
		"Mutation.collectLabSpecimen":         `mutation { collectLabSpecimen(input: {itemIds: ["bad"]}) { __typename } }`,
		"Mutation.receiveLabSpecimen":         `mutation { receiveLabSpecimen(id: "bad") { __typename } }`,
		"Mutation.rejectLabSpecimen":          `mutation { rejectLabSpecimen(id: "bad", input: {reason: HAEMOLYSED}) { __typename } }`,
		"Mutation.enterLabResult":             `mutation { enterLabResult(itemId: "bad", input: {numericValue: 1}) { __typename } }`,
		"Mutation.verifyLabResult":            `mutation { verifyLabResult(id: "bad") { __typename } }`,
		"Mutation.amendLabResult":             `mutation { amendLabResult(id: "bad", input: {numericValue: 1, reason: "x"}) { __typename } }`,
		"Mutation.acknowledgeCriticalResult":  `mutation { acknowledgeCriticalResult(id: "bad") { __typename } }`,
		"Subscription.labResultVerified":      "", // over WebSocket: see the lab subscription tests
		"Subscription.criticalLabResult":      "", // over WebSocket: see the lab subscription tests
	})
}
