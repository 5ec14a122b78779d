// `import text from "./x.service" with { type: "text" }`: Bun inlines the file's text (also in
// `bun build --compile` output); TypeScript needs to be told what such a module exports.
declare module "*.service" {
  const text: string;
  export default text;
}
