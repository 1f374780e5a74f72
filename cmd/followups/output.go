package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/followups/followups/shared/followup"
)

// print writes the API's answer (JSON, or a table), or err; it returns the
// exit status.
func (c *client) print(r *reply, err error) int {
	e := c.env
	if err != nil {
		return fail(e, err)
	}
	if !c.table {
		var out bytes.Buffer
		if err := json.Indent(&out, bytes.TrimSpace(r.body), "", "  "); err != nil {
			return fail(e, fmt.Errorf("the API's answer is not JSON: %w", err))
		}
		out.WriteByte('\n')
		_, _ = e.stdout.Write(out.Bytes())
		return exitOK
	}
	var answer struct {
		ID         string               `json:"id"`
		Followups  []*followup.Followup `json:"followups"`
		NextCursor string               `json:"next_cursor"`
		Cancelled  *int                 `json:"cancelled"`
		IDs        []string             `json:"ids"`
	}
	if err := json.Unmarshal(r.body, &answer); err != nil {
		return fail(e, fmt.Errorf("the API's answer is not JSON: %w", err))
	}
	switch {
	case answer.Cancelled != nil:
		fmt.Fprintf(e.stdout, "cancelled %d\n", *answer.Cancelled)
		for _, id := range answer.IDs {
			fmt.Fprintln(e.stdout, id)
		}
	case answer.ID != "":
		var f followup.Followup
		_ = json.Unmarshal(r.body, &f) // decoded above
		table(e.stdout, []*followup.Followup{&f})
	default:
		table(e.stdout, answer.Followups)
		if answer.NextCursor != "" {
			fmt.Fprintf(e.stdout, "\nmore: --cursor %s\n", answer.NextCursor)
		}
	}
	return exitOK
}

// table writes followups one a line, for people.
func table(w io.Writer, fs []*followup.Followup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTHREAD\tSTATUS\tRUN_AT\tATTEMPTS\tDETAIL")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", f.ID, strconv.Quote(f.ThreadID), f.Status, f.RunAt.UTC().Format(time.RFC3339), f.Attempts, detail(f))
	}
	_ = tw.Flush()
}

// detail is what else a person wants to know of f.
func detail(f *followup.Followup) string {
	switch {
	case f.DropReason != "":
		return string(f.DropReason) + ": " + f.LastError
	case f.ReplacedPrevious != nil:
		return "replaced " + f.ReplacedPrevious.ID + " (now " + string(f.ReplacedPrevious.Status) + ")"
	case f.RearmedFrom != "":
		return "re-arms " + f.RearmedFrom
	case f.LastError != "":
		return "last error: " + f.LastError
	}
	return "-"
}
