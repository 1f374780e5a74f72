package followup

// Exported for the tests of package followup_test.
var (
	DecodeObjectForTest     = decodeObject
	DecodeObjectSlowForTest = decodeObjectSlow
)

var ParseOwnMessageForTest = parseOwnMessage
