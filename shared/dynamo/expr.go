package dynamo

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// expr collects the attribute names and values of a condition or update
// expression, so every name goes through a placeholder (several, like
// status, are DynamoDB reserved words) and every value through one of its
// own.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

// name returns the placeholder of attribute a.
func (e *expr) name(a string) string {
	p := "#" + a
	e.names[p] = a
	return p
}

// value returns a new placeholder holding v.
func (e *expr) value(v types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = v
	return p
}

// Names returns the names for the request, nil when there are none.
func (e *expr) Names() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

// Values returns the values for the request, nil when there are none.
func (e *expr) Values() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

// and joins conditions.
func and(conds ...string) string { return strings.Join(conds, " AND ") }
