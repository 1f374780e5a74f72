package mcp

import (
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/shared/followup"
)

// The tools' names.
const (
	ScheduleTool = "schedule_followup"
	ListTool     = "list_followups"
	CancelTool   = "cancel_followup"
)

// The input schemas carry the API's limits. A string's limit is in bytes of
// UTF-8 and maxLength counts characters, so maxLength is the same number:
// it never refuses a valid value, and the API refuses the rest with the
// exact rule. Exactly one of delay_seconds and run_at is said in words, not
// with oneOf: several model providers refuse a tool whose input schema has
// oneOf, anyOf or allOf at its top level.

func scheduleTool(l followup.Limits) *sdk.Tool {
	lo, hi := l.DelaySeconds()
	return &sdk.Tool{
		Name:  ScheduleTool,
		Title: "Schedule a followup",
		Description: strings.Join([]string{
			"Come back to this conversation later: at the time you choose, it receives a user turn with your prompt, so you can keep a promise such as \"I'll check back in an hour\" instead of going silent.",
			"Use it when you are waiting on something (a build, a deploy, a reply, a time of day) or have promised to follow up.",
			fmt.Sprintf("Give exactly one of delay_seconds, %s, or run_at, an RFC 3339 time within that range from now (a time without UTC offset needs timezone).", l),
			"Write the prompt as a note to your future self: what to check and why, with the details you will need; it arrives as if the user sent it.",
			"A second call from the same agent run replaces the followup it scheduled before (replaced_previous in the result). Keep followup_id to cancel it.",
		}, " "),
		Annotations: &sdk.ToolAnnotations{DestructiveHint: new(false), OpenWorldHint: new(false)},
		InputSchema: object(map[string]any{
			"prompt": map[string]any{
				"type": "string", "minLength": 1, "maxLength": followup.MaxPromptBytes,
				"description": fmt.Sprintf("The message you will receive: what to check and why. Not blank; at most %d bytes.", followup.MaxPromptBytes),
			},
			"delay_seconds": map[string]any{
				"type": "integer", "minimum": lo, "maximum": hi,
				"description": fmt.Sprintf("Seconds from now, %d to %d. Give this or run_at, not both.", lo, hi),
			},
			"run_at": map[string]any{
				"type":        "string",
				"description": "When, as an RFC 3339 time such as 2026-01-02T15:04:05Z, or a wall-clock time such as 2026-01-02T09:00:00 with timezone. Give this or delay_seconds, not both.",
			},
			"timezone": map[string]any{
				"type":        "string",
				"description": "An IANA time zone such as Europe/Paris, only for a run_at without UTC offset.",
			},
			"reason": map[string]any{
				"type": "string", "maxLength": followup.MaxReasonBytes,
				"description": fmt.Sprintf("Why you are scheduling it, shown to the conversation; at most %d bytes.", followup.MaxReasonBytes),
			},
		}, "prompt"),
	}
}

func listTool() *sdk.Tool {
	statuses := make([]string, len(followup.Statuses))
	for i, s := range followup.Statuses {
		statuses[i] = string(s)
	}
	return &sdk.Tool{
		Name:  ListTool,
		Title: "List this conversation's followups",
		Description: "List the followups of this conversation, soonest first: what you have scheduled (status scheduled) and what came of earlier ones " +
			"(delivered; failed_dropped, with drop_reason and last_error; cancelled). " +
			"Use it before scheduling, to avoid a duplicate, or to find the followup_id of one to cancel. " +
			fmt.Sprintf("Returns at most limit followups (1 to %d, default %d); pass next_cursor back as cursor for the next page.", followup.MaxListLimit, followup.DefaultListLimit),
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
		InputSchema: object(map[string]any{
			"status": map[string]any{"type": "string", "enum": statuses, "description": "Only followups in this status."},
			"limit":  map[string]any{"type": "integer", "minimum": 1, "maximum": followup.MaxListLimit, "description": "Followups per page."},
			"cursor": map[string]any{"type": "string", "description": "next_cursor from the previous result, with the same status."},
		}),
	}
}

func cancelTool() *sdk.Tool {
	return &sdk.Tool{
		Name:  CancelTool,
		Title: "Cancel a followup",
		Description: "Cancel a followup of this conversation that is still scheduled, when it is no longer needed (the user already answered, the task is done). " +
			"It then never fires. One that is dispatching or already settled cannot be cancelled (conflict).",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: new(true), OpenWorldHint: new(false)},
		InputSchema: object(map[string]any{
			"followup_id": map[string]any{"type": "string", "minLength": 1, "maxLength": 60, "description": "The followup_id schedule_followup or list_followups gave."},
		}, "followup_id"),
	}
}

// object is the input schema of an object with properties, nothing else.
func object(properties map[string]any, required ...string) json.RawMessage {
	s := map[string]any{"type": "object", "properties": properties, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}
