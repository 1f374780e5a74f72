// Package api is Followups' HTTP API (the README's API section) as an http.Handler. The
// same handler serves followupd and, behind an API Gateway adapter, the
// schedule Lambda function.
//
// It decodes requests, checks what HTTP owns (authentication, route and
// method, Content-Type, size), calls followup.Service, and maps every
// followup.Error code to one status in one table (errors.go). It holds no
// state and makes no decisions of its own.
package api
