// Package apigw serves an http.Handler behind an API Gateway HTTP API: it
// turns a payload format 2.0 event (events.APIGatewayV2HTTPRequest) into an
// *http.Request, runs the handler, and turns what it wrote into an
// events.APIGatewayV2HTTPResponse. The schedule function serves shared/api
// this way, so the API behaves on AWS as it does in followupd.
//
// It is not a router and knows nothing of Followups' routes, except what a
// caller passes to Rejoin.
//
// # The path
//
// An HTTP API does not hand the function the path the client sent. Live
// captures of HTTP API events (published with the hotsock/voker Lambda
// adapter, vokerhttp/testdata/ingress-paths.json, and matching reports in
// fastify/aws-lambda-fastify#169, honojs/hono#2156 and
// middleapi/standard-server#93) show that rawPath and requestContext.http.path
// arrive percent-decoded, even decoded twice:
//
//	client sends              rawPath the function gets
//	/c/space%20value          /c/space value
//	/c/slash%2Fvalue          /c/slash/value        (the slash splits the segment)
//	/c/hash%23value           /c/hash#value
//	/c/question%3Fvalue       /c/question           (cut at the decoded "?")
//	/c/literal%252Fvalue      /c/literal/value      (decoded twice)
//	/c/literal%2525value      /c/literal%value
//	/c/percent%25done         (refused by API Gateway before the function)
//
// Routing on the gateway uses the decoded path too, so an escaped slash
// never matches a route such as /threads/{thread_id}/followups; the
// template's $default route brings such requests to the function anyway.
// Lambda function URLs, REST APIs and ALB keep the path percent-encoded
// instead, and so may hand-written events (sam local invoke --event).
//
// Handler therefore reads rawPath as an escaped path when it is one (it
// unescapes cleanly), and as an already decoded path otherwise (a "%" not
// followed by two hex digits can only be literal). Both readings agree on
// every path that holds no "%": a decoded path is then also a valid
// escaped one that unescapes to itself. An encoded %2F stays inside its
// segment, so r.PathValue returns the value with its slash. A decoded
// path whose slashes were escaped by the client is put back together by
// Rejoin for the routes that name where such a value sits.
//
// What no function can undo: a "?" or "%" in a path segment does not
// survive an HTTP API (the path is cut at the "?"; a "%" must be followed
// by hex digits, and those are then decoded once more).
package apigw
