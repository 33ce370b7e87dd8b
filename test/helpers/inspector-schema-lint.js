/**
 * The MCP Inspector's schema-portability check (`--strict` on `tools/list`), copied verbatim from
 * @modelcontextprotocol/inspector 2.12.0, clients/cli/build/index.js ("core/json/schemaLint.ts"), so the
 * test applies exactly the Inspector's rules without its CLI (which needs Node >= 22.19).
 * Licence of the copied code: MIT / Apache-2.0 (the MCP project's licence; see the package's LICENSE).
 * Only the `export` line at the end is ours.
 */
// @ts-nocheck
// ../../core/json/schemaLint.ts
var BOOLEAN_VALUED_KEYWORDS = /* @__PURE__ */ new Set([
  "additionalProperties",
  "unevaluatedProperties",
  "additionalItems",
  "unevaluatedItems"
]);
var SUBSCHEMA_KEYWORDS2 = [
  "items",
  "contains",
  "not",
  "propertyNames",
  "if",
  "then",
  "else",
  "additionalProperties",
  "unevaluatedProperties",
  "additionalItems",
  "unevaluatedItems",
  // 2019-09/2020-12: the schema the *decoded* string content must satisfy.
  // A real schema position, so a bare `true` or a remote `$ref` under it is a
  // real finding.
  "contentSchema"
];
var SUBSCHEMA_ARRAY_KEYWORDS2 = [
  "allOf",
  "anyOf",
  "oneOf",
  "prefixItems"
];
var SUBSCHEMA_MAP_KEYWORDS2 = [
  "properties",
  "patternProperties",
  "dependentSchemas",
  "dependencies",
  "$defs",
  "definitions"
];
var CONSTRAINING_KEYWORDS = /* @__PURE__ */ new Set([
  // Assertions
  "type",
  "enum",
  "const",
  "multipleOf",
  "maximum",
  "exclusiveMaximum",
  "minimum",
  "exclusiveMinimum",
  "maxLength",
  "minLength",
  "pattern",
  "format",
  "contentMediaType",
  "contentEncoding",
  "contentSchema",
  "maxItems",
  "minItems",
  "uniqueItems",
  "maxContains",
  "minContains",
  "maxProperties",
  "minProperties",
  "required",
  "dependentRequired",
  // Applicators
  "allOf",
  "anyOf",
  "oneOf",
  "not",
  // `if` / `then` / `else` are deliberately absent — they only constrain as a
  // PAIR. `if` alone has no assertion effect, and `then` / `else` are ignored
  // without it, so `{"if": {"const": 1}}` accepts every value. The pairing is
  // checked separately in `constrainsInstance`.
  "items",
  "prefixItems",
  "contains",
  "additionalItems",
  "unevaluatedItems",
  "properties",
  "patternProperties",
  "additionalProperties",
  "unevaluatedProperties",
  "propertyNames",
  "dependentSchemas",
  "dependencies",
  // References
  "$ref",
  "$dynamicRef",
  "$recursiveRef"
]);
var JSON_SCHEMA_TYPES = /* @__PURE__ */ new Set([
  "null",
  "boolean",
  "object",
  "array",
  "number",
  "string",
  "integer"
]);
function constrainsInstance(node) {
  if (Object.keys(node).some((key) => CONSTRAINING_KEYWORDS.has(key))) {
    return true;
  }
  return "if" in node && ("then" in node || "else" in node);
}
function isPortableTypeUnion(type) {
  if (type.length === 0) return false;
  if (!type.every((t) => typeof t === "string" && JSON_SCHEMA_TYPES.has(t))) {
    return false;
  }
  return new Set(type).size === type.length;
}
var MAX_DEPTH2 = 64;
function isRecord6(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function childPath(parent, key) {
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) {
    return parent === "" ? key : `${parent}.${key}`;
  }
  return `${parent}[${JSON.stringify(key)}]`;
}
function indexPath(parent, index) {
  return `${parent}[${index}]`;
}
function describeSchemaPath(schema, path5) {
  return path5 === "" ? schema : `${schema}.${path5}`;
}
function declaresAnyId(node, depth = 0) {
  if (depth > MAX_DEPTH2 || !isRecord6(node)) return false;
  if (typeof node.$id === "string" && node.$id !== "") return true;
  let found = false;
  forEachSubschema(node, "", (child) => {
    if (!found) found = declaresAnyId(child, depth + 1);
  });
  return found;
}
function add(ctx, rule, severity, path5, issue, suggestion) {
  ctx.findings.push({
    rule,
    severity,
    schema: ctx.schema,
    path: path5,
    issue,
    suggestion
  });
}
function forEachSubschema(node, path5, visit) {
  for (const key of SUBSCHEMA_MAP_KEYWORDS2) {
    const map = node[key];
    if (!isRecord6(map)) continue;
    for (const [name, sub] of Object.entries(map)) {
      visit(sub, childPath(childPath(path5, key), name), key);
    }
  }
  for (const key of SUBSCHEMA_ARRAY_KEYWORDS2) {
    const arr = node[key];
    if (!Array.isArray(arr)) continue;
    arr.forEach((sub, i) => {
      visit(sub, indexPath(childPath(path5, key), i), key);
    });
  }
  for (const key of SUBSCHEMA_KEYWORDS2) {
    if (!(key in node)) continue;
    const value = node[key];
    if (key === "items" && Array.isArray(value)) {
      value.forEach((sub, i) => {
        visit(sub, indexPath(childPath(path5, key), i), key);
      });
      continue;
    }
    visit(value, childPath(path5, key), key);
  }
}
function booleanTrueSuggestion(keyword) {
  if (keyword === "not") {
    return "Use `{}`, the object form of the always-true schema \u2014 under `not` that is an exact replacement. (Declaring a concrete type here would instead let every value of another type through.)";
  }
  return 'Declare what the value actually is \u2014 e.g. `{"type": "object", "additionalProperties": true}` for a free-form object. That is a deliberate change of contract, not an equivalent rewrite: `true` accepts any JSON value at all.';
}
function walk(node, path5, keyword, depth, ctx) {
  if (depth > MAX_DEPTH2) return;
  if (typeof node === "boolean") {
    if (keyword !== void 0 && BOOLEAN_VALUED_KEYWORDS.has(keyword)) return;
    add(
      ctx,
      "boolean-schema",
      "error",
      path5,
      `Bare \`${String(node)}\` used where a schema object is expected.`,
      node ? booleanTrueSuggestion(keyword) : (
        // `false` in a property position means the property is FORBIDDEN.
        // Deleting the entry is not the same thing: with `additionalProperties`
        // absent (default `true`) the property becomes allowed with any value,
        // so the suggestion has to preserve the always-false constraint.
        'Use the object form of the always-false schema \u2014 `{"not": {}}`. (Deleting the entry is a different contract: under the default `additionalProperties` the property would then be allowed with any value, not forbidden.)'
      )
    );
    return;
  }
  if (!isRecord6(node)) return;
  lintNode(node, path5, keyword, ctx);
  forEachSubschema(node, path5, (child, childPathValue, childKeyword) => {
    walk(child, childPathValue, childKeyword, depth + 1, ctx);
  });
}
var NULL_BRANCH_CAVEAT = " A dialect with no `null` type, such as OpenAPI 3.0, still cannot express the `null` branch directly; there nullability is written `nullable: true`, which is not JSON Schema, so no single spelling is portable to both.";
function lintNode(node, path5, keyword, ctx) {
  const type = node.type;
  if (Array.isArray(type) && isPortableTypeUnion(type)) {
    add(
      ctx,
      "type-union",
      "warning",
      path5,
      `\`type\` is an array (${JSON.stringify(type)}). This is legal JSON Schema, and some model providers recommend it for nullable fields, but it is less portable: a client that maps tool schemas onto a single-\`type\` dialect (such as the OpenAPI subset used for Gemini function declarations) may reject the tool or drop the constraint.`,
      `Split it into \`anyOf\` branches, each with a single \`type\` \u2014 \`{"anyOf": [${type.map((t) => `{"type": "${t}"}`).join(
        ", "
      )}]}\`. (Making the property optional instead is a different contract: absent is not the same as \`null\`.)${type.includes("null") ? NULL_BRANCH_CAVEAT : ""}`
    );
  }
  const ref = node.$ref;
  if (typeof ref === "string" && ref !== "" && !ref.startsWith("#") && !ctx.hasEmbeddedIds) {
    add(
      ctx,
      "remote-ref",
      "warning",
      path5,
      `\`$ref\` points outside this document (\`${ref}\`). Clients do not fetch remote schemas, so the constraint is dropped or the tool is rejected.`,
      "Inline the referenced schema, or move it into `$defs` and reference it as `#/$defs/<name>`."
    );
  }
  const constrains = constrainsInstance(node);
  if (!constrains && keyword !== "not") {
    add(
      ctx,
      "untyped-schema",
      "warning",
      path5,
      "Schema carries no validation keyword at all, so it accepts any value \u2014 the object-literal spelling of a bare `true`.",
      // "changes", not "narrows": in an ordinary property position it does
      // narrow, but under a conditional (`if`) a typed replacement redirects
      // which branch applies rather than tightening anything.
      'Declare what the value actually is \u2014 e.g. `{"type": "object", "additionalProperties": true}` for a free-form object. That is a deliberate change of contract, which is the point: as written it constrains nothing.'
    );
  }
}
function lintSchema(schema, kind, findings) {
  walk(schema, "", void 0, 0, {
    schema: kind,
    findings,
    hasEmbeddedIds: declaresAnyId(schema)
  });
}
function lintToolSchemas(tool) {
  const findings = [];
  if (tool.inputSchema !== void 0) {
    lintSchema(tool.inputSchema, "inputSchema", findings);
  }
  if (tool.outputSchema !== void 0) {
    lintSchema(tool.outputSchema, "outputSchema", findings);
  }
  return findings;
}
function lintTools(tools) {
  const results = [];
  for (const tool of tools) {
    const findings = lintToolSchemas(tool);
    if (findings.length > 0) results.push({ toolName: tool.name, findings });
  }
  return results;
}
function countFindings(results) {
  let errors = 0;
  let warnings = 0;
  for (const { findings } of results) {
    for (const f of findings) {
      if (f.severity === "error") errors++;
      else warnings++;
    }
  }
  return { errors, warnings };
}
function plural2(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
function summarizeFindings(results) {
  const { errors, warnings } = countFindings(results);
  return `${plural2(errors, "error")}, ${plural2(warnings, "warning")} across ${plural2(results.length, "tool")}`;
}
function formatSchemaLintReport(results) {
  const lines = [];
  for (const { toolName, findings } of results) {
    for (const f of findings) {
      lines.push(
        `${f.severity === "error" ? "Error" : "Warning"}: tool "${toolName}"`
      );
      lines.push(`  Path: ${describeSchemaPath(f.schema, f.path)}`);
      lines.push(`  Issue: ${f.issue}`);
      lines.push(`  Suggestion: ${f.suggestion}`);
      lines.push("");
    }
  }
  lines.push(`${summarizeFindings(results)}.`);
  return lines.join("\n");
}

export { lintTools, countFindings, formatSchemaLintReport };
