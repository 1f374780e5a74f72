package harness

import "strings"

// DynamoDB operations by what they do to the table.
var (
	dynamoReads  = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true}
	dynamoWrites = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}
)

// DynamoReads counts the DynamoDB read calls in calls (keyed
// "Service.Operation", as the functions' "aws calls" lines are).
func DynamoReads(calls map[string]int) int { return countDynamo(calls, dynamoReads) }

// DynamoWrites counts the DynamoDB write calls in calls.
func DynamoWrites(calls map[string]int) int { return countDynamo(calls, dynamoWrites) }

func countDynamo(calls map[string]int, ops map[string]bool) int {
	n := 0
	for k, v := range calls {
		if op, ok := strings.CutPrefix(k, "DynamoDB."); ok && ops[op] {
			n += v
		}
	}
	return n
}

// TotalCalls counts every call in calls.
func TotalCalls(calls map[string]int) int {
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}
