/** The AWS SDK against a dsm node's S3 listener, for the S3 tests. */
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3'

export interface S3Credentials { accessKeyId: string, secretAccessKey: string }

/** A path-style client of `endpoint` that does not retry (a test sees the first answer). */
export function s3Client (endpoint: string, credentials: S3Credentials): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1 })
}

/** The S3 error a call ends with (its name and status); throws if it succeeded or failed otherwise. */
export async function s3Error (p: Promise<unknown>): Promise<{ name: string, status: number | undefined }> {
  try {
    await p
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode }
    throw err
  }
  throw new Error('expected an S3 error')
}
