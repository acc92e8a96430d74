/// The OpenAPI 3.1 description of the hub's whole HTTP API, served at `GET /openapi.json`.
///
/// This constant is the one source; `ops/openapi.json` is a copy for readers and tools, and
/// `OpenAPIDocumentTests` fails when the two differ (regenerate the copy with
/// `starling admin openapi > ops/openapi.json`) or when a route the hub registers is missing here (or the other
/// way round). Edit the JSON here, keep it valid: the test parses it.
public enum HubOpenAPI {
    /// The document, pretty-printed JSON with a trailing newline.
    public static let document = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Starling hub API",
    "version": "1",
    "summary": "Multi-active PostgreSQL sync: the hub's HTTP/2 API for regional agents and operators.",
    "description": "Served by the hub at `/openapi.json`. HTTP/2 only (TLS with ALPN `h2`; h2c prior knowledge on loopback). JSON bodies may be gzip-encoded. Errors are `{\"error\":{\"code\":…,\"message\":…}}` with a fitting 4xx/5xx status. Fields may be added to any object, never renamed. A standby hub (another hub process holds the sequencer lock) answers `/healthz`, `/readyz`, `/metrics`, `/v1/status`, `/` and `/openapi.json`, and every other route with 503 and code `standby`: agents then move to the next hub URL.",
    "license": {
      "name": "Apache-2.0",
      "identifier": "Apache-2.0"
    }
  },
  "servers": [
    {
      "url": "https://127.0.0.1:8443",
      "description": "The `listen` address of hub.yaml."
    }
  ],
  "tags": [
    {
      "name": "region",
      "description": "Called by a region's agent with that region's token."
    },
    {
      "name": "admin",
      "description": "Called by operators (dashboard, `starling admin`) with the admin token."
    },
    {
      "name": "operator",
      "description": "Unauthenticated: health, metrics, the dashboard page and this document."
    }
  ],
  "security": [],
  "paths": {
    "/": {
      "get": {
        "operationId": "dashboard",
        "tags": [
          "operator"
        ],
        "summary": "The dashboard page",
        "description": "One self-contained HTML page (inline CSS and JavaScript, no external assets) that polls the admin endpoints with a token typed into the page (or passed once as `#token=…`). Served with a strict Content-Security-Policy carrying a per-response nonce.",
        "security": [],
        "responses": {
          "200": {
            "description": "The page.",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/openapi.json": {
      "get": {
        "operationId": "openapi",
        "tags": [
          "operator"
        ],
        "summary": "This document",
        "security": [],
        "responses": {
          "200": {
            "description": "The OpenAPI 3.1 description of the hub's HTTP API.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "operationId": "health",
        "tags": [
          "operator"
        ],
        "summary": "Liveness",
        "security": [],
        "responses": {
          "200": {
            "description": "The process is alive (active or standby: see `role`).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Health"
                }
              }
            }
          }
        }
      }
    },
    "/readyz": {
      "get": {
        "operationId": "ready",
        "tags": [
          "operator"
        ],
        "summary": "Readiness (active or standby)",
        "description": "200 on the active hub (the sequencer), 503 with code `standby` on a standby: the health check for a load balancer in front of several hubs.",
        "security": [],
        "responses": {
          "200": {
            "description": "This hub is the active sequencer.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Ready"
                }
              }
            }
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "tags": [
          "operator"
        ],
        "summary": "Prometheus metrics",
        "description": "Prometheus text exposition format 0.0.4. Names follow `starling_<subsystem>_<name>_<unit>`; see ops/monitoring for the rules and dashboard built on them.",
        "security": [],
        "responses": {
          "200": {
            "description": "Metrics.",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/config": {
      "get": {
        "operationId": "getConfig",
        "tags": [
          "region"
        ],
        "summary": "The calling region's name and synced tables",
        "security": [
          {
            "regionToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The region and its tables.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RegionConfig"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/changes": {
      "post": {
        "operationId": "pushChanges",
        "tags": [
          "region"
        ],
        "summary": "Push captured changes",
        "description": "Verdicts come back in request order, only after they are durably committed. Idempotent on each change's `id`: a re-pushed change gets the same verdict. A region may push only its own changes (403 otherwise). The body may be gzip-encoded (`content-encoding: gzip`).",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/PushRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "One verdict per change, in order.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/PushResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "get": {
        "operationId": "pullChanges",
        "tags": [
          "region"
        ],
        "summary": "Pull the log after a cursor",
        "description": "Entries with `seq > after` that the calling region needs, in seq order; long-polls up to `wait_ms` (capped by the hub's `limits.max_wait_ms`) when nothing is new. `next` is the cursor for the next pull.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "parameters": [
          {
            "name": "after",
            "in": "query",
            "schema": {
              "type": "integer",
              "format": "int64",
              "minimum": 0,
              "default": 0
            },
            "description": "The cursor: the last seq the region has."
          },
          {
            "name": "limit",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "default": 500
            },
            "description": "Page size; capped by `limits.max_pull_limit` (default 5000)."
          },
          {
            "name": "wait_ms",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 0,
              "default": 0
            },
            "description": "Long-poll time when nothing is new, milliseconds."
          }
        ],
        "responses": {
          "200": {
            "description": "A page of the log.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/PullPage"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "410": {
            "description": "`cursor_pruned`: entries after `after` were dropped by retention; re-bootstrap from `GET /v1/snapshot`.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/agent-status": {
      "post": {
        "operationId": "reportAgentStatus",
        "tags": [
          "region"
        ],
        "summary": "An agent's periodic health report",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/AgentStatusReport"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Recorded.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Ok"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/tables/register": {
      "post": {
        "operationId": "registerTables",
        "tags": [
          "region"
        ],
        "summary": "Register the shapes of the region's synced tables",
        "description": "The first registration of a table stores its columns and key; a later one must match (columns by name and type in any order, key columns in order) or is refused with 409 `schema_mismatch` naming the table and column.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/TableRegistration"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Every table matches (or was registered now).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Ok"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/dead-letters": {
      "post": {
        "operationId": "reportDeadLetters",
        "tags": [
          "region"
        ],
        "summary": "Report log entries the region could not apply",
        "description": "Each letter is recorded as an open conflict, once per (region, id); re-reporting returns the same conflict id.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/DeadLetterReport"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The conflict id of each letter, in order.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DeadLetterResult"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/snapshot": {
      "get": {
        "operationId": "getSnapshot",
        "tags": [
          "region"
        ],
        "summary": "Page through a table's heads to bootstrap a region",
        "description": "Heads of one synced table in key order, tombstones included (`row` null). Keep the first page's `seq`, load every page (each row's `seq` is the key's version), then pull the log after that `seq`: entries the snapshot already reflects are skipped by the version check, so no hub transaction spans the pages. `heads` (first page only) counts the table's heads; `adopted_by`/`adopted_rows` name the region whose rows became the initial state.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "parameters": [
          {
            "name": "table",
            "in": "query",
            "required": true,
            "schema": {
              "type": "string"
            },
            "description": "A synced table, `schema.table`."
          },
          {
            "name": "after",
            "in": "query",
            "schema": {
              "type": "string"
            },
            "description": "The previous page's `next` (a key's canonical JSON text); omitted for the first page."
          },
          {
            "name": "limit",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 10000,
              "default": 1000
            },
            "description": "Rows per page."
          }
        ],
        "responses": {
          "200": {
            "description": "One page of heads.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "table",
                    "seq",
                    "rows",
                    "next"
                  ],
                  "properties": {
                    "table": {
                      "type": "string"
                    },
                    "seq": {
                      "type": "integer",
                      "format": "int64"
                    },
                    "heads": {
                      "type": [
                        "integer",
                        "null"
                      ],
                      "format": "int64"
                    },
                    "adopted_by": {
                      "type": [
                        "string",
                        "null"
                      ]
                    },
                    "adopted_rows": {
                      "type": [
                        "integer",
                        "null"
                      ],
                      "format": "int64"
                    },
                    "next": {
                      "type": [
                        "string",
                        "null"
                      ],
                      "description": "The `after` of the next page; null on the last page."
                    },
                    "rows": {
                      "type": "array",
                      "items": {
                        "type": "object",
                        "required": [
                          "key",
                          "row",
                          "seq",
                          "origin"
                        ],
                        "properties": {
                          "key": {
                            "type": "object"
                          },
                          "row": {
                            "type": [
                              "object",
                              "null"
                            ]
                          },
                          "seq": {
                            "type": "integer",
                            "format": "int64"
                          },
                          "origin": {
                            "type": "string"
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/snapshot/adopt": {
      "post": {
        "operationId": "adoptTable",
        "tags": [
          "region"
        ],
        "summary": "Claim a table whose existing rows become the initial state",
        "description": "Succeeds for the first region that claims a table while the hub holds no head of it (and again for that region: idempotent). The region then pushes its rows as inserts. Any other region gets 409 `adoption_refused` and must compare its rows with the snapshot.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "table",
                  "rows"
                ],
                "properties": {
                  "table": {
                    "type": "string"
                  },
                  "rows": {
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "This region holds the claim.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "adopted_by",
                    "table"
                  ],
                  "properties": {
                    "adopted_by": {
                      "type": "string"
                    },
                    "table": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/status": {
      "get": {
        "operationId": "getStatus",
        "tags": [
          "admin"
        ],
        "summary": "Head, per-region cursor, lag and activity, conflict counts",
        "security": [
          {
            "adminToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The hub's status.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Status"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/conflicts": {
      "get": {
        "operationId": "listConflicts",
        "tags": [
          "admin"
        ],
        "summary": "Recorded conflicts with both images",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "name": "status",
            "in": "query",
            "schema": {
              "type": "string",
              "enum": [
                "open",
                "all"
              ],
              "default": "open"
            }
          },
          {
            "name": "after",
            "in": "query",
            "schema": {
              "type": "integer",
              "format": "int64",
              "minimum": 0,
              "default": 0
            },
            "description": "Conflict id cursor: the `next` of the previous page."
          },
          {
            "name": "limit",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000,
              "default": 100
            }
          }
        ],
        "responses": {
          "200": {
            "description": "A page of conflicts in id order.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ConflictPage"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/conflicts/{id}/resolve": {
      "post": {
        "operationId": "resolveConflict",
        "tags": [
          "admin"
        ],
        "summary": "Resolve an open conflict",
        "description": "Emits a `resolution` log entry from the hub with the chosen image and marks the conflict resolved (audited).",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "integer",
              "format": "int64",
              "minimum": 1
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Resolution"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The resolved conflict and the resolution entry.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ResolveResult"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          }
        }
      }
    },
    "/v1/reconcile": {
      "post": {
        "operationId": "startReconcile",
        "tags": [
          "admin"
        ],
        "summary": "Start a reconciliation (or get the running one)",
        "description": "Every region's synced tables are compared with the hub's heads by bucketed hashes; differing rows are repaired with `repair` entries for that region only. Answers at once; follow the run with `GET /v1/reconcile/{id}`. While a run is active, its id is returned with `started: false`.",
        "security": [
          {
            "adminToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The run's id.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ReconcileStarted"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/reconcile/{id}": {
      "get": {
        "operationId": "getReconcile",
        "tags": [
          "admin"
        ],
        "summary": "A reconciliation run with per-region and per-table results",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id, or `latest`.",
            "schema": {
              "type": "string",
              "pattern": "^([1-9][0-9]*|latest)$"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ReconcileRun"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/reconcile/task": {
      "get": {
        "operationId": "getReconcileTask",
        "tags": [
          "region"
        ],
        "summary": "The region's current reconciliation step",
        "description": "Agents poll this; `task` is null when no run needs this region.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The task, or null.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ReconcileTaskResponse"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/reconcile/answer": {
      "post": {
        "operationId": "answerReconcileTask",
        "tags": [
          "region"
        ],
        "summary": "Answer the region's current reconciliation step",
        "description": "Bucket summaries or key hashes computed in one snapshot with the region's cursor. The response carries the next step (null when the region is done). 409 when the answer is not for the current step.",
        "security": [
          {
            "regionToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/ReconcileAnswer"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The next task, or null.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ReconcileTaskResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "regionToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The region's token from hub.yaml (`regions[].token`, stored hashed)."
      },
      "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "hub.yaml `admin_token`."
      }
    },
    "responses": {
      "BadRequest": {
        "description": "The request is malformed; the message names the field.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "Missing or wrong bearer token.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Forbidden": {
        "description": "The token is valid but not for this (e.g. a change of another region).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "No such object.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "The object is in the wrong state (e.g. `already_resolved`, `schema_mismatch`).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "TooLarge": {
        "description": "The body or the number of changes is over the limit.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unavailable": {
        "description": "Overloaded, shutting down, the database failed, or this hub is a standby (code `standby`: use the active hub); retry after `retry-after` seconds.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
        "ReconcileStarted": {
          "type": "object",
          "required": [
            "id",
            "status",
            "started"
          ],
          "properties": {
            "id": {
              "type": "integer",
              "format": "int64"
            },
            "status": {
              "type": "string",
              "enum": [
                "running"
              ]
            },
            "started": {
              "type": "boolean",
              "description": "False when a run was already active (its id is returned)."
            }
          }
        },
        "ReconcileRun": {
          "type": "object",
          "required": [
            "id",
            "trigger",
            "status",
            "started_at",
            "finished_at",
            "seconds",
            "results"
          ],
          "properties": {
            "id": {
              "type": "integer",
              "format": "int64"
            },
            "trigger": {
              "type": "string",
              "enum": [
                "api",
                "schedule"
              ]
            },
            "status": {
              "type": "string",
              "enum": [
                "running",
                "done",
                "failed"
              ]
            },
            "started_at": {
              "type": "string",
              "format": "date-time"
            },
            "finished_at": {
              "type": [
                "string",
                "null"
              ],
              "format": "date-time"
            },
            "seconds": {
              "type": "number"
            },
            "error": {
              "type": [
                "string",
                "null"
              ]
            },
            "results": {
              "type": "array",
              "items": {
                "$ref": "#/components/schemas/ReconcileResult"
              }
            }
          }
        },
        "ReconcileResult": {
          "type": "object",
          "required": [
            "region",
            "table",
            "status"
          ],
          "properties": {
            "region": {
              "type": "string"
            },
            "table": {
              "type": "string"
            },
            "status": {
              "type": "string",
              "enum": [
                "pending",
                "running",
                "done",
                "timed_out",
                "failed"
              ]
            },
            "rows_compared": {
              "type": "integer",
              "format": "int64"
            },
            "rows_differing": {
              "type": "integer",
              "format": "int64"
            },
            "rows_repaired": {
              "type": "integer",
              "format": "int64"
            },
            "rows_skipped": {
              "type": "integer",
              "format": "int64",
              "description": "Keys left alone because they were in flight (newer head than the region's cursor, or a pending local change)."
            },
            "seconds": {
              "type": "number"
            },
            "differing_keys": {
              "type": "array",
              "description": "The first 100 differing keys.",
              "items": {
                "type": "object",
                "properties": {
                  "key": {
                    "$ref": "#/components/schemas/Key"
                  },
                  "difference": {
                    "type": "string",
                    "enum": [
                      "different",
                      "missing",
                      "extra"
                    ]
                  }
                }
              }
            }
          }
        },
        "ReconcileTask": {
          "type": "object",
          "required": [
            "run",
            "table",
            "step",
            "bits",
            "within_bits",
            "within",
            "keys"
          ],
          "properties": {
            "run": {
              "type": "integer",
              "format": "int64"
            },
            "table": {
              "type": "string"
            },
            "step": {
              "type": "integer",
              "format": "int64"
            },
            "bits": {
              "type": "integer",
              "minimum": 1,
              "maximum": 32
            },
            "within_bits": {
              "type": "integer",
              "minimum": 0,
              "maximum": 32
            },
            "within": {
              "type": "array",
              "items": {
                "type": "integer",
                "format": "int64"
              }
            },
            "keys": {
              "type": "boolean",
              "description": "List keys with row hashes instead of bucket summaries."
            }
          }
        },
        "ReconcileTaskResponse": {
          "type": "object",
          "required": [
            "task"
          ],
          "properties": {
            "task": {
              "oneOf": [
                {
                  "$ref": "#/components/schemas/ReconcileTask"
                },
                {
                  "type": "null"
                }
              ]
            }
          }
        },
        "ReconcileAnswer": {
          "type": "object",
          "required": [
            "run",
            "table",
            "step",
            "cursor"
          ],
          "properties": {
            "run": {
              "type": "integer",
              "format": "int64"
            },
            "table": {
              "type": "string"
            },
            "step": {
              "type": "integer",
              "format": "int64"
            },
            "cursor": {
              "type": "integer",
              "format": "int64",
              "minimum": 0
            },
            "buckets": {
              "type": "array",
              "items": {
                "type": "array",
                "items": {
                  "type": "integer",
                  "format": "int64"
                },
                "minItems": 4,
                "maxItems": 4
              },
              "description": "[bucket, count, sum of high hash halves, sum of low halves]."
            },
            "keys": {
              "type": "array",
              "items": {
                "type": "array",
                "items": {
                  "type": "string"
                },
                "minItems": 2,
                "maxItems": 2
              },
              "description": "[key jsonb text, md5 of key and row text]."
            },
            "pending": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          }
        },
      "Error": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "string",
                "examples": [
                  "unauthorized",
                  "invalid_request",
                  "not_found",
                  "already_resolved"
                ]
              },
              "message": {
                "type": "string"
              }
            }
          }
        }
      },
      "Ok": {
        "type": "object",
        "required": [
          "status"
        ],
        "properties": {
          "status": {
            "const": "ok"
          }
        }
      },
      "Health": {
        "type": "object",
        "required": [
          "status"
        ],
        "properties": {
          "status": {
            "const": "ok"
          },
          "role": {
            "type": "string",
            "enum": [
              "active",
              "standby"
            ],
            "description": "`active`: this hub holds the sequencer lock; `standby`: it waits for it and writes nothing."
          }
        }
      },
      "Ready": {
        "type": "object",
        "required": [
          "status",
          "role"
        ],
        "properties": {
          "status": {
            "const": "ready"
          },
          "role": {
            "const": "active"
          }
        }
      },
      "Row": {
        "type": "object",
        "additionalProperties": true,
        "description": "A lossless row image: column name → value. Values a JSON parser could round (bigint beyond 2^53, numeric) are strings; bytea is `\\x` hex text; timestamps are ISO 8601 with microseconds and offset; SQL NULL is null."
      },
      "Key": {
        "type": "object",
        "additionalProperties": true,
        "description": "The primary-key columns of a row and their values."
      },
      "Operation": {
        "type": "string",
        "enum": [
          "insert",
          "update",
          "delete"
        ]
      },
      "Policy": {
        "type": "string",
        "enum": [
          "lww",
          "priority",
          "merge",
          "manual",
          "reject"
        ]
      },
      "RegionConfig": {
        "type": "object",
        "required": [
          "region",
          "tables"
        ],
        "properties": {
          "region": {
            "type": "string"
          },
          "tables": {
            "type": "array",
            "items": {
              "type": "object",
              "required": [
                "name",
                "policy"
              ],
              "properties": {
                "name": {
                  "type": "string",
                  "examples": [
                    "public.items"
                  ]
                },
                "policy": {
                  "$ref": "#/components/schemas/Policy"
                },
                "manual_provisional": {
                  "type": "string",
                  "enum": [
                    "keep",
                    "lww"
                  ]
                },
                "key_columns": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  },
                  "description": "Once a region registered the table."
                },
                "columns": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/Column"
                  },
                  "description": "Once a region registered the table."
                }
              }
            }
          }
        }
      },
      "Column": {
        "type": "object",
        "required": [
          "name",
          "type"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "type": {
            "type": "string",
            "description": "PostgreSQL `format_type`, e.g. `bigint`, `numeric(12,2)`."
          }
        }
      },
      "Change": {
        "type": "object",
        "required": [
          "id",
          "tx",
          "table",
          "op",
          "key",
          "base",
          "hlc"
        ],
        "properties": {
          "id": {
            "type": "string",
            "description": "Globally unique and stable across retries: `<region>:<outbox id>`.",
            "examples": [
              "eu-west:1842"
            ]
          },
          "tx": {
            "type": "string",
            "description": "Origin transaction, never split when applied.",
            "examples": [
              "eu-west:90211"
            ]
          },
          "table": {
            "type": "string",
            "examples": [
              "public.items"
            ]
          },
          "op": {
            "$ref": "#/components/schemas/Operation"
          },
          "key": {
            "$ref": "#/components/schemas/Key"
          },
          "before": {
            "oneOf": [
              {
                "$ref": "#/components/schemas/Row"
              },
              {
                "type": "null"
              }
            ]
          },
          "after": {
            "oneOf": [
              {
                "$ref": "#/components/schemas/Row"
              },
              {
                "type": "null"
              }
            ]
          },
          "base": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "The hub seq of the row version this write was made on (0: none seen)."
          },
          "hlc": {
            "type": "integer",
            "format": "int64",
            "description": "Hybrid logical clock: physical microseconds and logical bits."
          }
        }
      },
      "PushRequest": {
        "type": "object",
        "required": [
          "changes"
        ],
        "properties": {
          "changes": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Change"
            },
            "description": "At most `limits.max_push_changes` (default 5000); a push of one origin transaction may hold up to `limits.max_transaction_changes` (default 100000)."
          }
        }
      },
      "Verdict": {
        "oneOf": [
          {
            "$ref": "#/components/schemas/AcceptedVerdict"
          },
          {
            "$ref": "#/components/schemas/MergedVerdict"
          },
          {
            "$ref": "#/components/schemas/RejectedVerdict"
          }
        ],
        "discriminator": {
          "propertyName": "status"
        }
      },
      "AcceptedVerdict": {
        "type": "object",
        "required": [
          "id",
          "status",
          "seq"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "status": {
            "const": "accepted"
          },
          "seq": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          }
        }
      },
      "MergedVerdict": {
        "type": "object",
        "required": [
          "id",
          "status",
          "seq",
          "row"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "status": {
            "const": "merged"
          },
          "seq": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          },
          "row": {
            "$ref": "#/components/schemas/Row"
          }
        }
      },
      "RejectedVerdict": {
        "type": "object",
        "required": [
          "id",
          "status",
          "conflict",
          "winner"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "status": {
            "const": "rejected"
          },
          "conflict": {
            "type": "integer",
            "format": "int64"
          },
          "winner": {
            "type": "object",
            "required": [
              "seq",
              "origin",
              "row"
            ],
            "properties": {
              "seq": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              },
              "origin": {
                "type": "string"
              },
              "row": {
                "oneOf": [
                  {
                    "$ref": "#/components/schemas/Row"
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          }
        }
      },
      "PushResponse": {
        "type": "object",
        "required": [
          "results"
        ],
        "properties": {
          "results": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Verdict"
            }
          }
        }
      },
      "LogEntry": {
        "type": "object",
        "required": [
          "seq",
          "origin",
          "id",
          "tx",
          "table",
          "op",
          "key",
          "row",
          "hlc",
          "kind",
          "rewritten"
        ],
        "properties": {
          "seq": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          },
          "origin": {
            "type": "string",
            "description": "A region name, or `hub` for resolutions and repairs."
          },
          "id": {
            "type": "string"
          },
          "tx": {
            "type": "string"
          },
          "table": {
            "type": "string"
          },
          "op": {
            "$ref": "#/components/schemas/Operation"
          },
          "key": {
            "$ref": "#/components/schemas/Key"
          },
          "row": {
            "oneOf": [
              {
                "$ref": "#/components/schemas/Row"
              },
              {
                "type": "null"
              }
            ],
            "description": "The full authoritative image; null for a delete."
          },
          "hlc": {
            "type": "integer",
            "format": "int64"
          },
          "kind": {
            "type": "string",
            "enum": [
              "change",
              "merge",
              "resolution",
              "correction",
              "repair"
            ]
          },
          "rewritten": {
            "type": "boolean",
            "description": "The hub changed the image, so the origin must apply it too."
          },
          "base": {
            "type": "integer",
            "format": "int64",
            "description": "Repairs only: the seq of the head the entry re-asserts (the region records it as the key's version)."
          }
        }
      },
      "PullPage": {
        "type": "object",
        "required": [
          "entries",
          "next",
          "head"
        ],
        "properties": {
          "entries": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/LogEntry"
            }
          },
          "next": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "The `after` of the next pull."
          },
          "head": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "The newest committed seq."
          }
        }
      },
      "AgentStatusReport": {
        "type": "object",
        "properties": {
          "outbox_depth": {
            "type": "integer",
            "minimum": 0
          },
          "apply_lag_seconds": {
            "type": "number"
          },
          "apply_lag": {
            "type": "number",
            "deprecated": true,
            "description": "Older name of `apply_lag_seconds`."
          },
          "last_error": {
            "type": [
              "string",
              "null"
            ]
          },
          "busy": {
            "description": "The agent's longest-running operation once it has run for 5 s (an apply, a push); null otherwise.",
            "oneOf": [
              {
                "type": "object",
                "required": [
                  "what",
                  "seconds"
                ],
                "properties": {
                  "what": {
                    "type": "string"
                  },
                  "seconds": {
                    "type": "number",
                    "minimum": 0
                  }
                }
              },
              {
                "type": "null"
              }
            ]
          }
        }
      },
      "TableRegistration": {
        "type": "object",
        "required": [
          "tables"
        ],
        "properties": {
          "tables": {
            "type": "array",
            "items": {
              "type": "object",
              "required": [
                "name",
                "columns",
                "key"
              ],
              "properties": {
                "name": {
                  "type": "string"
                },
                "columns": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/Column"
                  }
                },
                "key": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  },
                  "description": "Primary-key columns in order."
                }
              }
            }
          }
        }
      },
      "DeadLetterReport": {
        "type": "object",
        "required": [
          "dead_letters"
        ],
        "properties": {
          "dead_letters": {
            "type": "array",
            "items": {
              "type": "object",
              "required": [
                "id",
                "seq",
                "table",
                "entry",
                "error"
              ],
              "properties": {
                "id": {
                  "type": "integer",
                  "format": "int64",
                  "description": "The region's local dead-letter id (with the region, the idempotency key)."
                },
                "seq": {
                  "type": "integer",
                  "format": "int64",
                  "minimum": 0
                },
                "table": {
                  "type": "string"
                },
                "entry": {
                  "type": "object",
                  "description": "The log entry (or verdict) that could not be applied."
                },
                "sqlstate": {
                  "type": [
                    "string",
                    "null"
                  ]
                },
                "error": {
                  "type": "string"
                }
              }
            }
          }
        }
      },
      "DeadLetterResult": {
        "type": "object",
        "required": [
          "conflicts"
        ],
        "properties": {
          "conflicts": {
            "type": "array",
            "items": {
              "type": "integer",
              "format": "int64"
            }
          }
        }
      },
      "RegionStatus": {
        "type": "object",
        "required": [
          "name",
          "cursor",
          "lag_entries",
          "lag_seconds"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "cursor": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          },
          "lag_entries": {
            "type": "integer",
            "minimum": 0
          },
          "lag_seconds": {
            "type": "number",
            "minimum": 0,
            "description": "Age of the oldest entry the region has not pulled."
          },
          "outbox_depth": {
            "type": [
              "integer",
              "null"
            ]
          },
          "apply_lag": {
            "type": [
              "number",
              "null"
            ]
          },
          "apply_lag_seconds": {
            "type": [
              "number",
              "null"
            ]
          },
          "last_push_at": {
            "oneOf": [
              {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with microseconds, UTC (`…Z`)."
              },
              {
                "type": "null"
              }
            ]
          },
          "last_pull_at": {
            "oneOf": [
              {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with microseconds, UTC (`…Z`)."
              },
              {
                "type": "null"
              }
            ]
          },
          "last_error": {
            "type": [
              "string",
              "null"
            ]
          },
          "busy": {
            "description": "The agent's longest-running operation past 5 s, as it last reported (within the last minute): what, since when, for how long; null when none.",
            "oneOf": [
              {
                "type": "object",
                "required": [
                  "what",
                  "since",
                  "seconds"
                ],
                "properties": {
                  "what": {
                    "type": "string"
                  },
                  "since": {
                    "type": "string",
                    "format": "date-time"
                  },
                  "seconds": {
                    "type": "number",
                    "minimum": 0
                  }
                }
              },
              {
                "type": "null"
              }
            ]
          }
        }
      },
      "Status": {
        "type": "object",
        "required": [
          "head",
          "regions",
          "conflicts"
        ],
        "properties": {
          "head": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          },
          "regions": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/RegionStatus"
            }
          },
          "conflicts": {
            "type": "object",
            "required": [
              "open",
              "total"
            ],
            "properties": {
              "open": {
                "type": "integer"
              },
              "total": {
                "type": "integer"
              }
            }
          },
          "role": {
            "type": "string",
            "enum": [
              "active",
              "standby"
            ],
            "description": "`active`: this hub holds the sequencer lock; `standby`: it waits for it and writes nothing."
          },
          "role_since": {
            "type": "string",
            "format": "date-time",
            "description": "When this hub took its current role."
          },
          "takeovers": {
            "type": "integer",
            "minimum": 0,
            "description": "Times this process became the active sequencer (its first start included)."
          },
          "fencings": {
            "type": "integer",
            "minimum": 0,
            "description": "Times this process lost its sequencer lock session and stepped down to standby."
          },
          "last_takeover_seconds": {
            "type": [
              "number",
              "null"
            ],
            "minimum": 0,
            "description": "Seconds from winning the sequencer lock to serving writes, of the last takeover; null before the first."
          }
        }
      },
      "Conflict": {
        "type": "object",
        "required": [
          "id",
          "table",
          "key",
          "policy",
          "status",
          "winner",
          "current",
          "incoming",
          "detected_at"
        ],
        "properties": {
          "id": {
            "type": "integer",
            "format": "int64"
          },
          "table": {
            "type": "string"
          },
          "key": {
            "$ref": "#/components/schemas/Key"
          },
          "policy": {
            "$ref": "#/components/schemas/Policy"
          },
          "status": {
            "type": "string",
            "enum": [
              "auto",
              "open",
              "resolved"
            ]
          },
          "winner": {
            "type": "string",
            "enum": [
              "current",
              "incoming"
            ]
          },
          "current": {
            "type": "object",
            "required": [
              "seq",
              "origin",
              "op",
              "row"
            ],
            "properties": {
              "seq": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              },
              "origin": {
                "type": "string"
              },
              "op": {
                "$ref": "#/components/schemas/Operation"
              },
              "row": {
                "oneOf": [
                  {
                    "$ref": "#/components/schemas/Row"
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          },
          "incoming": {
            "type": "object",
            "required": [
              "id",
              "origin",
              "op",
              "base",
              "row"
            ],
            "properties": {
              "id": {
                "type": "string"
              },
              "origin": {
                "type": "string"
              },
              "op": {
                "$ref": "#/components/schemas/Operation"
              },
              "base": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              },
              "row": {
                "oneOf": [
                  {
                    "$ref": "#/components/schemas/Row"
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          },
          "detected_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with microseconds, UTC (`…Z`)."
          }
        }
      },
      "ConflictPage": {
        "type": "object",
        "required": [
          "conflicts",
          "next"
        ],
        "properties": {
          "conflicts": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Conflict"
            }
          },
          "next": {
            "type": "integer",
            "format": "int64",
            "description": "The `after` of the next page."
          }
        }
      },
      "Resolution": {
        "oneOf": [
          {
            "type": "object",
            "required": [
              "pick"
            ],
            "properties": {
              "pick": {
                "type": "string",
                "enum": [
                  "current",
                  "incoming"
                ]
              }
            },
            "additionalProperties": false
          },
          {
            "type": "object",
            "required": [
              "row"
            ],
            "properties": {
              "row": {
                "$ref": "#/components/schemas/Row",
                "description": "An image written by the operator; it must carry the conflict's key."
              }
            },
            "additionalProperties": false
          }
        ]
      },
      "ResolveResult": {
        "type": "object",
        "required": [
          "conflict",
          "entry"
        ],
        "properties": {
          "conflict": {
            "$ref": "#/components/schemas/Conflict"
          },
          "entry": {
            "$ref": "#/components/schemas/LogEntry"
          }
        }
      }
    }
  }
}

"""#
}
