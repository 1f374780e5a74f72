package api

import (
	"maps"
	"net/http"
	"slices"
)

// routes are the routes ServeMux matches, and what serves each.
func (h *Handler) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /followups":            h.create,
		"GET /followups/{id}":        h.get,
		"DELETE /followups/{id}":     h.cancel,
		"POST /followups/{id}/rearm": h.rearm,
		"POST /mcp":                  h.serveMCP,
	}
}

// Routes lists every route the handler serves, as "METHOD /path": the
// ones ServeMux matches, the thread routes it matches itself (threadRoute),
// and the open OpenAPI document. A runner's own open routes (followupd's
// /healthz and /metrics) are its to list.
func Routes() []string {
	routes := slices.Collect(maps.Keys((&Handler{}).routes()))
	routes = append(routes, "GET /threads/{thread_id}/followups", "DELETE /threads/{thread_id}/followups", "GET "+OpenAPIPath)
	slices.Sort(routes)
	return routes
}
