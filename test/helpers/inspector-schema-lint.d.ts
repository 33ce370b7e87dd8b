/** Types for the MCP Inspector's schema lint, copied verbatim in inspector-schema-lint.js. */
export interface SchemaFinding {
  rule: string;
  severity: 'error' | 'warning';
  schema: 'inputSchema' | 'outputSchema';
  path: string;
  issue: string;
  suggestion: string;
}
export interface ToolFindings {
  toolName: string;
  findings: SchemaFinding[];
}
export function lintTools(tools: readonly { name: string; inputSchema?: unknown; outputSchema?: unknown }[]): ToolFindings[];
export function countFindings(results: readonly ToolFindings[]): { errors: number; warnings: number };
export function formatSchemaLintReport(results: readonly ToolFindings[]): string;
